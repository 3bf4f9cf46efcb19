"""RV32IM + Zicsr CPU, machine mode (QEMU: target/riscv/)."""
