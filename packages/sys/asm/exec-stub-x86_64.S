/*
 * box exec stub, x86_64 Linux: the body of a tiny static ELF program that a
 * container's first process executes from a sealed memfd just before it
 * executes the container's command.
 *
 * Why: until that last execve the child is a copy of the host's Node.js
 * process, so /proc/self/exe names the host's node binary. A command, a
 * symlink, a #! line or an ELF interpreter pointing at /proc/self/exe would
 * make execve run that binary inside the container, which could then keep an
 * fd on it and rewrite it (CVE-2019-5736). Once the stub runs, /proc/self/exe
 * is the sealed memfd (no writes, no resizing), so those paths lead only to
 * the stub again, and the stub refuses to run without box's arguments
 * (a line on stderr, exit status 127).
 *
 *   argv[0]  the error pipe's fd, in decimal
 *   argv[1]  the parent-death signal for the command, in decimal (0: none)
 *   argv[2]  the command's path
 *   argv[3…] the command's argv;  envp: its environment
 *
 * It marks the error pipe close-on-exec, sets its real gid to its effective
 * gid, sets the parent-death signal again (the kernel clears it at an execve
 * with differing ids) and executes argv[2]. If that fails, it writes {-1, errno} (two u64) to
 * the error pipe, as the spawn routine does for a failed step, and exits with
 * status 127.
 *
 * The stub itself must not be dumpable: it holds the error pipe (a host fd) and
 * is visible in the container's PID namespace, where container root could take
 * the fd with pidfd_getfd or open /proc/PID/exe. The kernel makes a process
 * non-dumpable at execve when its real and effective gids differ, so box starts
 * the stub that way, and the stub evens them out before the command's execve
 * (which makes the command dumpable again, as any process).
 *
 * Rebuild: packages/sys/scripts/build-spawn.sh (checked by a unit test).
 */
        .intel_syntax noprefix
        .text
        .globl _start
_start:
        mov     rbx, [rsp]              /* argc */
        cmp     rbx, 4
        jb      refuse
        mov     rsi, [rsp + 8]          /* argv[0]: the error fd */
        call    number
        jc      refuse
        mov     r12d, eax
        mov     rsi, [rsp + 16]         /* argv[1]: the parent-death signal */
        call    number
        jc      refuse
        mov     r13d, eax
        /* fcntl(fd, F_SETFD, FD_CLOEXEC): fails unless box left the pipe open */
        mov     eax, 72
        mov     edi, r12d
        mov     esi, 2
        mov     edx, 1
        syscall
        test    rax, rax
        jnz     refuse
        /* setresgid(egid, egid, egid): box started the stub with a real gid other than
           its effective one, so that the kernel made it non-dumpable at its exec */
        mov     eax, 108
        syscall
        mov     edi, eax
        mov     esi, eax
        mov     edx, eax
        mov     eax, 119
        syscall
        mov     r14, -2
        test    rax, rax
        jnz     report
        /* prctl(PR_SET_PDEATHSIG, signal) */
        mov     eax, 157
        mov     edi, 1
        mov     esi, r13d
        syscall
        mov     r14, -3
        test    rax, rax
        jnz     report
        /* execve(argv[2], &argv[3], envp); envp = &argv[argc + 1] */
        mov     rdi, [rsp + 24]
        lea     rsi, [rsp + 32]
        lea     rdx, [rsp + rbx * 8 + 16]
        mov     eax, 59
        syscall
        mov     r14, -1
report:
        /* {step, errno}: -1 the execve, -2 the setresgid, -3 the prctl */
        neg     rax
        push    rax
        push    r14
        /* write(fd, {-1, errno}, 16) */
        mov     eax, 1
        mov     edi, r12d
        mov     rsi, rsp
        mov     edx, 16
        syscall
        jmp     fail
refuse:
        /* started by something other than box (a #! line or a link to /proc/self/exe) */
        mov     eax, 1
        mov     edi, 2
        lea     rsi, [rip + refusal]
        mov     edx, refusal_end - refusal
        syscall
fail:
        mov     eax, 231
        mov     edi, 127
        syscall

/* The decimal number at rsi in eax (at most 0x7fffff); carry set if it is not one. */
number:
        xor     eax, eax
        movzx   ecx, byte ptr [rsi]
        test    ecx, ecx
        jz      not_number
next_digit:
        movzx   ecx, byte ptr [rsi]
        test    ecx, ecx
        jz      number_done
        sub     ecx, 48
        cmp     ecx, 9
        ja      not_number
        imul    eax, eax, 10
        add     eax, ecx
        cmp     eax, 0x7fffff
        ja      not_number
        inc     rsi
        jmp     next_digit
number_done:
        clc
        ret
not_number:
        stc
        ret

refusal:
        .ascii  "box exec stub: not a command\n"
refusal_end:
