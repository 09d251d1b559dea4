/*
 * box spawn program, x86_64 Linux.
 *
 *   long box_spawn(struct program *p);
 *
 * Blocks every signal, calls clone(p->clone_flags | exit signal), restores the
 * signal mask in the parent and returns the child's pid (or -errno).
 * The child never returns: it walks p->records, issues each system call and
 * exits. On the first failing record it writes {index, errno} (two u64) to
 * p->error_fd and exits with status 127. The last record is normally execve;
 * on success the close-on-exec error pipe closes and the parent reads EOF.
 *
 * The child runs on a copy of the parent's address space (no CLONE_VM) and
 * touches nothing but this code, the program block and the records, so it
 * never re-enters Node.js or V8 (whose heap is not copied across fork).
 *
 * Layout (must match src/program.ts):
 *   program: +0 clone_flags  +8 error_fd  +16 nrecords  +24 records
 *            +32 slots[16]   +160 errbuf[2]  +176 sigset_all  +184 sigset_old
 *            +192 args scratch[6]
 *   record (80 bytes): +0 nr  +8 args[6]  +56 u32 ignore_errno
 *            +60 u8 store_slot (0xff: none)  +61 u8 arg_slot_mask
 *            +62 u8 zero_errno (0: none)  +64 store_addr (0: none)  +72 reserved
 *   An argument whose bit is set in arg_slot_mask is a slot index, replaced by
 *   the value a previous record stored there (e.g. an fd returned by open).
 *   A successful result is also written as a 32-bit int to store_addr when it
 *   is not 0 (used to place an fd inside an SCM_RIGHTS message).
 *   A result of 0 fails the record with errno zero_errno when that is not 0
 *   (a read that hits EOF at the sync point: the parent is gone).
 *
 * Rebuild: packages/sys/scripts/build-spawn.sh (checked by a unit test).
 */
        .intel_syntax noprefix
        .text
        .globl box_spawn
box_spawn:
        push    rbx
        push    r12
        push    r13
        mov     rbx, rdi
        /* rt_sigprocmask(SIG_SETMASK, &all, &old, 8) */
        mov     eax, 14
        mov     edi, 2
        lea     rsi, [rbx + 176]
        lea     rdx, [rbx + 184]
        mov     r10d, 8
        syscall
        /* clone(flags, NULL stack, NULL, NULL, 0) */
        mov     eax, 56
        mov     rdi, [rbx]
        xor     esi, esi
        xor     edx, edx
        xor     r10d, r10d
        xor     r8d, r8d
        syscall
        test    rax, rax
        jz      child
        mov     r12, rax
        /* parent (or failed clone): restore the signal mask */
        mov     eax, 14
        mov     edi, 2
        lea     rsi, [rbx + 184]
        xor     edx, edx
        mov     r10d, 8
        syscall
        mov     rax, r12
        pop     r13
        pop     r12
        pop     rbx
        ret

child:
        mov     r12, [rbx + 24]
        xor     r13d, r13d
next_record:
        cmp     r13, [rbx + 16]
        jae     all_done
        movzx   edx, byte ptr [r12 + 61]
        xor     ecx, ecx
arg_loop:
        mov     rax, [r12 + 8 + rcx * 8]
        bt      edx, ecx
        jnc     arg_plain
        mov     rax, [rbx + 32 + rax * 8]
arg_plain:
        mov     [rbx + 192 + rcx * 8], rax
        inc     ecx
        cmp     ecx, 6
        jb      arg_loop
        mov     rdi, [rbx + 192]
        mov     rsi, [rbx + 200]
        mov     rdx, [rbx + 208]
        mov     r10, [rbx + 216]
        mov     r8,  [rbx + 224]
        mov     r9,  [rbx + 232]
        mov     rax, [r12]
        syscall
        cmp     rax, -4095
        jb      record_ok
        neg     rax
        mov     ecx, [r12 + 56]
        cmp     rax, rcx
        je      record_done
report:
        /* report {index, errno} and exit 127 */
        mov     [rbx + 160], r13
        mov     [rbx + 168], rax
        mov     eax, 1
        mov     rdi, [rbx + 8]
        lea     rsi, [rbx + 160]
        mov     edx, 16
        syscall
        mov     eax, 231
        mov     edi, 127
        syscall
record_ok:
        test    rax, rax
        jnz     not_zero
        movzx   eax, byte ptr [r12 + 62]
        test    eax, eax
        jnz     report
not_zero:
        mov     rdx, [r12 + 64]
        test    rdx, rdx
        jz      no_store_addr
        mov     [rdx], eax
no_store_addr:
        movzx   ecx, byte ptr [r12 + 60]
        cmp     ecx, 0xff
        je      record_done
        mov     [rbx + 32 + rcx * 8], rax
record_done:
        add     r12, 80
        inc     r13
        jmp     next_record
all_done:
        mov     eax, 231
        xor     edi, edi
        syscall
