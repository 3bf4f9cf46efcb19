/* crt0.S - toynic guest entry and trap entry.
 *
 * The loader starts us at _start with a0 = argc, a1 = argv and sp already set
 * (16-byte aligned, below the argv strings at the top of RAM).  We set gp,
 * clear .bss, point mtvec at trap_entry and run rt_main(argc, argv), which
 * calls main() and then exit() with its result. */

    .file "crt0.S"

    .section .text.start, "ax"
    .globl _start
_start:
    /* gp must be set without relaxation, or the assembler would express it
     * relative to itself */
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop

    /* toynic's loader always sets sp; QEMU's `virt -bios none` leaves it 0
     * (and passes a0 = hart id = 0 = no arguments), so fall back to a small
     * stack of our own and the same ELF runs there too for comparison */
    bnez    sp, 1f
    la      sp, fallback_stack_top
1:
    la      t0, __bss_start
    la      t1, __bss_end
2:  bgeu    t0, t1, 3f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       2b
3:
    la      t0, trap_entry
    csrw    mtvec, t0
    call    rt_main
    /* rt_main never returns; park if it somehow does */
4:  wfi
    j       4b

    .section .bss.fallback_stack, "aw", @nobits
    .balign 16
    .space  8192
fallback_stack_top:

/* trap_entry: save every general register in a struct trap_frame on the
 * stack (x1..x31 at 4*i), call rt_trap(frame), restore and mret.  Saving all
 * of them (not only the caller-saved ones) lets the C side print or patch
 * any register. mepc may be changed by the handler before we return. */
    .text
    .globl trap_entry
    .balign 4
trap_entry:
    addi    sp, sp, -128
    sw      x1, 4(sp)
    sw      x3, 12(sp)
    sw      x4, 16(sp)
    sw      x5, 20(sp)
    sw      x6, 24(sp)
    sw      x7, 28(sp)
    sw      x8, 32(sp)
    sw      x9, 36(sp)
    sw      x10, 40(sp)
    sw      x11, 44(sp)
    sw      x12, 48(sp)
    sw      x13, 52(sp)
    sw      x14, 56(sp)
    sw      x15, 60(sp)
    sw      x16, 64(sp)
    sw      x17, 68(sp)
    sw      x18, 72(sp)
    sw      x19, 76(sp)
    sw      x20, 80(sp)
    sw      x21, 84(sp)
    sw      x22, 88(sp)
    sw      x23, 92(sp)
    sw      x24, 96(sp)
    sw      x25, 100(sp)
    sw      x26, 104(sp)
    sw      x27, 108(sp)
    sw      x28, 112(sp)
    sw      x29, 116(sp)
    sw      x30, 120(sp)
    sw      x31, 124(sp)
    addi    t0, sp, 128
    sw      t0, 8(sp)           /* the interrupted sp */
    sw      zero, 0(sp)
    mv      a0, sp
    call    rt_trap
    lw      x1, 4(sp)
    lw      x3, 12(sp)
    lw      x4, 16(sp)
    lw      x5, 20(sp)
    lw      x6, 24(sp)
    lw      x7, 28(sp)
    lw      x8, 32(sp)
    lw      x9, 36(sp)
    lw      x10, 40(sp)
    lw      x11, 44(sp)
    lw      x12, 48(sp)
    lw      x13, 52(sp)
    lw      x14, 56(sp)
    lw      x15, 60(sp)
    lw      x16, 64(sp)
    lw      x17, 68(sp)
    lw      x18, 72(sp)
    lw      x19, 76(sp)
    lw      x20, 80(sp)
    lw      x21, 84(sp)
    lw      x22, 88(sp)
    lw      x23, 92(sp)
    lw      x24, 96(sp)
    lw      x25, 100(sp)
    lw      x26, 104(sp)
    lw      x27, 108(sp)
    lw      x28, 112(sp)
    lw      x29, 116(sp)
    lw      x30, 120(sp)
    lw      x31, 124(sp)
    addi    sp, sp, 128
    mret
