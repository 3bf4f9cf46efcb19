"""toynic's machine side: main loop, options, CLI, CPU, board (QEMU: softmmu/, hw/riscv/)."""
