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
 *   argv[0]  the mode: "box-exec" (execute the command) or "box-init" (run it
 *            under a minimal init, below); the init's name in ps
 *   argv[1]  the error pipe's fd, in decimal; with an exec gate (OCI create/start),
 *            then a comma and the gate's fd: "5,21"
 *   argv[2]  the parent-death signal, in decimal (0: none)
 *   argv[3]  "--"
 *   argv[4]  the command's path
 *   argv[5…] the command's argv;  envp: its environment
 *
 * so that an init's /proc/1/cmdline reads "box-init 5 0 -- /bin/sh sh -c …",
 * as docker's reads "/sbin/docker-init -- sh -c …".
 *
 * It marks the error pipe close-on-exec, waits at the exec gate if it has one (below), sets its
 * real gid to its effective gid, sets the parent-death signal again (the kernel clears it at
 * an execve with differing ids) and executes argv[4]. If that fails, it writes {-1, errno}
 * (two u64) to the error pipe, as the spawn routine does for a failed step, and exits with
 * status 127.
 *
 * The stub itself must not be dumpable: it holds the error pipe (a host fd) and
 * is visible in the container's PID namespace, where container root could take
 * the fd with pidfd_getfd or open /proc/PID/exe. The kernel makes a process
 * non-dumpable at execve when its real and effective gids differ, so box starts
 * the stub that way, and the stub evens them out before the command's execve
 * (which makes the command dumpable again, as any process).
 *
 * Exec gate (runc's exec FIFO): the gate is an O_PATH fd of a FIFO. The stub writes
 * {-100, 0} to the error pipe (box's AT_GATE: the container waits) and closes it: the host
 * stops reading there (`create` has ended by the time `start` comes), so a later report would
 * only meet a closed pipe and SIGPIPE; without the pipe a failure from here on is the exit
 * status 127 alone, and the waiting stub holds no host pipe. Then it opens
 * /proc/self/fd/GATE for writing, which blocks until `start` opens the FIFO for reading,
 * writes "0" into it and closes both fds; then it goes on as without a gate. The gate's fd
 * has no leading zero (refused), so its /proc path fits the stub's 32-byte buffer. The wait
 * is the stub's and not the
 * spawn routine's because until its execve the child runs in the memory of the Node.js
 * process that made it (CLONE_VM): waiting there would keep that whole process's memory
 * mapped, about 10 MB of it the child's alone once `create` has exited, and /proc/PID/exe
 * naming the host's node binary for as long as the container is "created"; and the
 * execve that finally dropped it, after `start`, spent milliseconds unmapping it while
 * the command waited (and a read of /proc/PID/stat with it).
 *
 * Init mode (docker's --init, tini): the stub stays as PID 1 of the container's
 * new PID namespace, the command runs as its child, PID 2. It forwards the
 * signals it gets to the command, reaps every orphan the kernel hands it, and
 * exits with the command's status (its exit code, or 128 + the signal that
 * killed it) once the command ends; the kernel then kills whatever is left in
 * the namespace.
 * - All signals are blocked before the fork, so none sent in between is lost:
 *   the init takes them one by one with rt_sigtimedwait (it sleeps there, no
 *   handlers, no busy loop). A blocked signal is queued even for a namespace's
 *   init, which the kernel otherwise spares signals it has no handler for.
 * - The command gets a process group of its own and, when fd 0 is a terminal,
 *   the terminal's foreground (so ^C reaches it, not the init); it still has
 *   every signal blocked then, which keeps tcsetpgrp from stopping it with
 *   SIGTTOU. It then empties its signal mask and executes the command. A failed
 *   execve is reported on the error pipe as in exec mode, and the command's
 *   exit status 127 becomes the init's.
 * - The init closes its copy of the error pipe right after the fork: the host
 *   then reads EOF once the command's execve succeeded (the pipe is
 *   close-on-exec) or the report if it failed, as in exec mode. From then on the
 *   init holds nothing of the host: fds 0-2 (the container's stdio, the
 *   command's too), the stub's code from the sealed memfd, and a stack with the
 *   command's arguments and environment.
 * - Parent-death signal: the init keeps the one set above (a fork's child does
 *   not inherit it). If it is SIGKILL the init dies with the host process, and
 *   with the init every process of its PID namespace; another signal is
 *   forwarded to the command like any other. The command needs none of its own:
 *   it dies with the PID namespace. (So box runs an init only as PID 1 of a new
 *   PID namespace.)
 * - Dumpability: evening out the real gid changes neither the effective nor the
 *   fs gid, so the kernel leaves the stub non-dumpable (commit_creds), and the
 *   fork copies that to the command's process until its execve makes it
 *   dumpable. The init stays non-dumpable for its whole life. It holds nothing
 *   of the host once the error pipe is closed, so a dumpable init, which
 *   container root could ptrace or open through /proc/1, would be acceptable;
 *   but between the fork and that close it still holds the pipe, and staying
 *   non-dumpable costs nothing, so it is kept that way.
 *
 * Rebuild: packages/sys/scripts/build-spawn.sh (checked by a unit test).
 */
        .intel_syntax noprefix
        .text
        .globl _start
_start:
        mov     rbp, rsp                /* [rbp] argc, then argv[], NULL, envp[] */
        mov     rbx, [rbp]              /* argc */
        cmp     rbx, 6
        jb      refuse
        /* argv[0]: "box-exec", or "box-init" (r15d = 1) */
        mov     rsi, [rbp + 8]
        cmp     dword ptr [rsi], 0x2d786f62     /* "box-" */
        jne     refuse
        cmp     byte ptr [rsi + 8], 0
        jne     refuse
        mov     eax, [rsi + 4]
        xor     r15d, r15d
        cmp     eax, 0x63657865                 /* "exec" */
        je      mode_known
        inc     r15d
        cmp     eax, 0x74696e69                 /* "init" */
        jne     refuse
mode_known:
        mov     rsi, [rbp + 32]         /* argv[3]: "--" */
        cmp     word ptr [rsi], 0x2d2d
        jne     refuse
        cmp     byte ptr [rsi + 2], 0
        jne     refuse
        mov     rsi, [rbp + 16]         /* argv[1]: the error fd[,the exec gate's fd] */
        call    number
        jc      refuse
        mov     r12d, eax
        mov     r8d, -1                 /* r8d: the gate's fd, -1 for none */
        cmp     byte ptr [rsi], 0
        je      error_fd_done
        cmp     byte ptr [rsi], 0x2c    /* "," */
        jne     refuse
        inc     rsi
        mov     r9, rsi                 /* r9: the gate's digits, for its /proc path */
        call    number
        jc      refuse
        cmp     byte ptr [rsi], 0
        jne     refuse
        mov     r8d, eax
error_fd_done:
        mov     rsi, [rbp + 24]         /* argv[2]: the parent-death signal */
        call    number
        jc      refuse
        cmp     byte ptr [rsi], 0
        jne     refuse
        mov     r13d, eax
        /* fcntl(fd, F_SETFD, FD_CLOEXEC): fails unless box left the pipe open */
        mov     eax, 72
        mov     edi, r12d
        mov     esi, 2
        mov     edx, 1
        syscall
        test    rax, rax
        jnz     refuse
        test    r8d, r8d
        js      gate_done
        /* The exec gate. write(error fd, {AT_GATE, 0}, 16): the host's create is done */
        push    0
        push    -100
        mov     eax, 1
        mov     edi, r12d
        mov     rsi, rsp
        mov     edx, 16
        syscall
        add     rsp, 16
        cmp     rax, 16
        jne     fail
        /* close(error fd); r12d -1: later reports go nowhere (EBADF), the exit status stays */
        mov     eax, 3
        mov     edi, r12d
        syscall
        mov     r12d, -1
        /* "/proc/self/fd/" and the gate's digits, on the stack */
        sub     rsp, 32
        mov     rdi, rsp
        lea     rsi, [rip + fd_dir]
        mov     ecx, fd_dir_end - fd_dir
        rep movsb
        mov     rsi, r9
copy_digit:
        lodsb
        stosb
        test    al, al
        jnz     copy_digit
        /* openat(AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0): blocks until start opens the FIFO */
        mov     eax, 257
        mov     edi, -100
        mov     rsi, rsp
        mov     edx, 0x80001
        xor     r10d, r10d
        syscall
        add     rsp, 32
        test    rax, rax
        js      fail
        /* write(fifo, "0", 1): start reads it and returns */
        mov     r10d, eax               /* the FIFO's fd */
        push    0x30
        mov     eax, 1
        mov     edi, r10d
        mov     rsi, rsp
        mov     edx, 1
        syscall
        add     rsp, 8
        cmp     rax, 1
        jne     fail
        /* close(fifo), close(gate) */
        mov     eax, 3
        mov     edi, r10d
        syscall
        mov     eax, 3
        mov     edi, r8d
        syscall
gate_done:
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
        test    r15d, r15d
        jz      exec
        /* Init mode. rt_sigprocmask(SIG_BLOCK, all, NULL, 8) before the fork, so that
           no signal is lost in between; [rsp] stays the full set, [rsp + 8] the
           wait status */
        push    0
        push    -1
        mov     eax, 14
        xor     edi, edi
        mov     rsi, rsp
        xor     edx, edx
        mov     r10d, 8
        syscall
        /* fork() */
        mov     eax, 57
        syscall
        mov     r14, -4
        test    rax, rax
        js      report
        jz      command
        mov     r15d, eax               /* the command's pid */
        /* close(error fd): the host reads EOF once the command's execve succeeded */
        mov     eax, 3
        mov     edi, r12d
        syscall
wait_signal:
        /* rt_sigtimedwait(all, NULL, NULL, 8): sleeps until a signal is pending */
        mov     eax, 128
        mov     rdi, rsp
        xor     esi, esi
        xor     edx, edx
        mov     r10d, 8
        syscall
        cmp     eax, 17                 /* SIGCHLD */
        je      reap
        test    eax, eax                /* -EINTR (after a SIGSTOP): wait again */
        js      wait_signal
        /* kill(command, signal): forward everything else */
        mov     edi, r15d
        mov     esi, eax
        mov     eax, 62
        syscall
        jmp     wait_signal
reap:
        /* wait4(-1, &status, WNOHANG | __WALL, NULL) until no child is left to reap
           (one SIGCHLD may stand for several ends) */
        mov     eax, 61
        mov     edi, -1
        lea     rsi, [rsp + 8]
        mov     edx, 0x40000001
        xor     r10d, r10d
        syscall
        test    eax, eax                /* 0: none ended, -ECHILD: none left */
        jle     wait_signal
        cmp     eax, r15d
        jne     reap                    /* an orphan the kernel handed us */
        /* The command ended: exit with its exit code, or 128 + the signal that killed it */
        mov     edi, [rsp + 8]
        mov     eax, edi
        and     eax, 0x7f
        jz      exited
        lea     edi, [rax + 128]
        jmp     exit
exited:
        shr     edi, 8
exit:
        mov     eax, 231
        syscall
command:
        /* The command's process. setpgid(0, 0): a process group of its own */
        mov     eax, 109
        xor     edi, edi
        xor     esi, esi
        syscall
        /* ioctl(0, TIOCSPGRP, &getpid()): the terminal's foreground, if fd 0 is one
           (ENOTTY otherwise, ignored) */
        mov     eax, 39
        syscall
        push    rax
        mov     eax, 16
        xor     edi, edi
        mov     esi, 0x5410
        mov     rdx, rsp
        syscall
        /* rt_sigprocmask(SIG_SETMASK, empty, NULL, 8) */
        push    0
        mov     eax, 14
        mov     edi, 2
        mov     rsi, rsp
        xor     edx, edx
        mov     r10d, 8
        syscall
exec:
        /* execve(argv[4], &argv[5], envp); envp = &argv[argc + 1] */
        mov     rdi, [rbp + 40]
        lea     rsi, [rbp + 48]
        lea     rdx, [rbp + rbx * 8 + 16]
        mov     eax, 59
        syscall
        mov     r14, -1
report:
        /* {step, errno}: -1 the execve, -2 the setresgid, -3 the prctl, -4 the init's fork */
        neg     rax
        push    rax
        push    r14
        /* write(fd, {step, errno}, 16) */
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

/* The decimal number at rsi in eax (at most 0x7fffff, no leading zero), rsi left at the NUL
   or comma after it; carry set if it is not one. */
number:
        xor     eax, eax
        movzx   ecx, byte ptr [rsi]
        sub     ecx, 48
        cmp     ecx, 9
        ja      not_number              /* empty, or no digit first ("," too) */
        test    ecx, ecx
        jnz     next_digit
        movzx   edx, byte ptr [rsi + 1] /* "0" alone, never a leading zero: at most 7 digits */
        sub     edx, 48
        cmp     edx, 9
        jbe     not_number
next_digit:
        movzx   ecx, byte ptr [rsi]
        test    ecx, ecx
        jz      number_done
        cmp     ecx, 0x2c               /* "," ends it too: the caller looks at [rsi] */
        je      number_done
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
fd_dir:
        .ascii  "/proc/self/fd/"
fd_dir_end:
