"""Device models: DP8390/NE2000, UART, CLINT, PLIC, power (QEMU: hw/)."""
