package images

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	goruntime "runtime"
)

// PauseImage is the sandbox ("pause") image every pod starts with.
const PauseImage = "skiff.local/pause:1"

// The pause program is a static x86-64 Linux ELF executable assembled
// here by hand, so the sandbox image needs no toolchain, no libc and no
// download. It is PID 1 of a pod's PID namespace: it exits 0 on SIGTERM
// or SIGINT and reaps every child that gets re-parented to it.
//
// Its loop blocks SIGCHLD outside rt_sigsuspend, so a child that exits
// between wait4 and the sleep still wakes it (plain pause() could miss it):
//
//	block SIGCHLD
//	for {
//		if wait4(-1, NULL, WNOHANG, NULL) > 0 { continue } // reaped one
//		rt_sigsuspend(empty mask) // sleep until a signal; SIGCHLD lands here
//	}

// Linux x86-64 system call and signal numbers the program uses.
const (
	sysRtSigreturn  = 15
	sysRtSigaction  = 13
	sysRtSigprocmsk = 14
	sysWait4        = 61
	sysRtSigsuspend = 130
	sysExitGroup    = 231
	sigINT          = 2
	sigTERM         = 15
	sigCHLD         = 17
	saNoCldStop     = 0x1
	saRestorer      = 0x04000000
	wNoHang         = 1
)

// Memory layout: one read+execute segment holding the whole file, loaded
// at pauseBase. The kernel reads the sigaction structs and masks from it;
// nothing is ever written.
const (
	pauseBase   = 0x400000
	elfHdrSize  = 64
	progHdrSize = 56
	numProgHdrs = 2                                    // PT_LOAD and PT_GNU_STACK
	dataOff     = elfHdrSize + numProgHdrs*progHdrSize // 0xb0
	actExitOff  = dataOff                              // struct kernel_sigaction for SIGTERM/SIGINT
	actChldOff  = dataOff + 32                         // struct kernel_sigaction for SIGCHLD
	maskChldOff = dataOff + 64                         // sigset_t with only SIGCHLD
	maskNoneOff = dataOff + 72                         // empty sigset_t
	codeOff     = dataOff + 80                         // 0x100
)

// pauseELF returns the pause executable.
func pauseELF() ([]byte, error) {
	if goruntime.GOARCH != "amd64" {
		return nil, fmt.Errorf("pause image: only amd64 is supported, this is %s", goruntime.GOARCH)
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	addr := func(off int) []byte { return le32(uint32(pauseBase + off)) }
	var code []byte
	emit := func(b ...byte) { code = append(code, b...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	here := func() int { return len(code) }
	// rel8 returns the 8-bit displacement from the end of a 2-byte jump
	// emitted now to target.
	rel8 := func(target int) byte { return byte(int8(target - (here() + 2))) }

	// _start: install the handlers.
	emit(cat([]byte{0xB8}, le32(sysRtSigaction))...)  // mov eax, 13       ; rt_sigaction(
	emit(cat([]byte{0xBF}, le32(sigTERM))...)         // mov edi, 15       ;   SIGTERM,
	emit(cat([]byte{0xBE}, addr(actExitOff))...)      // mov esi, actExit  ;   &act,
	emit(0x31, 0xD2)                                  // xor edx, edx      ;   NULL,
	emit(cat([]byte{0x41, 0xBA}, le32(8))...)         // mov r10d, 8       ;   sizeof(sigset_t))
	emit(0x0F, 0x05)                                  // syscall           ; (keeps rsi, rdx, r10)
	emit(cat([]byte{0xB8}, le32(sysRtSigaction))...)  // mov eax, 13       ; rt_sigaction(
	emit(cat([]byte{0xBF}, le32(sigINT))...)          // mov edi, 2        ;   SIGINT, &act, NULL, 8)
	emit(0x0F, 0x05)                                  // syscall
	emit(cat([]byte{0xB8}, le32(sysRtSigaction))...)  // mov eax, 13       ; rt_sigaction(
	emit(cat([]byte{0xBF}, le32(sigCHLD))...)         // mov edi, 17       ;   SIGCHLD,
	emit(cat([]byte{0xBE}, addr(actChldOff))...)      // mov esi, actChld  ;   &act, NULL, 8)
	emit(0x0F, 0x05)                                  // syscall
	emit(cat([]byte{0xB8}, le32(sysRtSigprocmsk))...) // mov eax, 14       ; rt_sigprocmask(
	emit(0x31, 0xFF)                                  // xor edi, edi      ;   SIG_BLOCK,
	emit(cat([]byte{0xBE}, addr(maskChldOff))...)     // mov esi, maskChld ;   {SIGCHLD}, NULL, 8)
	emit(0x0F, 0x05)                                  // syscall
	// loop: reap, or sleep until a signal.
	loop := here()
	emit(cat([]byte{0xB8}, le32(sysWait4))...)        // mov eax, 61       ; wait4(
	emit(cat([]byte{0xBF}, le32(0xFFFFFFFF))...)      // mov edi, -1       ;   any child,
	emit(0x31, 0xF6)                                  // xor esi, esi      ;   NULL status,
	emit(cat([]byte{0xBA}, le32(wNoHang))...)         // mov edx, 1        ;   WNOHANG,
	emit(0x45, 0x31, 0xD2)                            // xor r10d, r10d    ;   NULL rusage)
	emit(0x0F, 0x05)                                  // syscall
	emit(0x48, 0x85, 0xC0)                            // test rax, rax     ; reaped a child (> 0)?
	emit(0x7F, rel8(loop))                            // jg loop           ; then look for more
	emit(cat([]byte{0xB8}, le32(sysRtSigsuspend))...) // mov eax, 130      ; rt_sigsuspend(
	emit(cat([]byte{0xBF}, addr(maskNoneOff))...)     // mov edi, maskNone ;   {}: SIGCHLD unblocked while asleep,
	emit(cat([]byte{0xBE}, le32(8))...)               // mov esi, 8        ;   sizeof(sigset_t))
	emit(0x0F, 0x05)                                  // syscall
	emit(0xEB, rel8(loop))                            // jmp loop
	exitHandler := here()                             // SIGTERM/SIGINT handler:
	emit(cat([]byte{0xB8}, le32(sysExitGroup))...)    // mov eax, 231      ; exit_group(
	emit(0x31, 0xFF)                                  // xor edi, edi      ;   0)
	emit(0x0F, 0x05)                                  // syscall
	chldHandler := here()                             // SIGCHLD handler: only wakes rt_sigsuspend
	emit(0xC3)                                        // ret               ; into the restorer
	restorer := here()                                // signal return trampoline (SA_RESTORER):
	emit(cat([]byte{0xB8}, le32(sysRtSigreturn))...)  // mov eax, 15       ; rt_sigreturn()
	emit(0x0F, 0x05)                                  // syscall

	codeAddr := func(off int) uint64 { return uint64(pauseBase + codeOff + off) }
	total := codeOff + len(code)
	out := make([]byte, 0, total)
	le := binary.LittleEndian
	// ELF header.
	out = append(out, 0x7F, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0 /* System V ABI */)
	out = append(out, make([]byte, 8)...)   // ABI version and padding
	out = le.AppendUint16(out, 2)           // e_type: ET_EXEC
	out = le.AppendUint16(out, 0x3E)        // e_machine: x86-64
	out = le.AppendUint32(out, 1)           // e_version
	out = le.AppendUint64(out, codeAddr(0)) // e_entry: _start
	out = le.AppendUint64(out, elfHdrSize)  // e_phoff: program headers follow
	out = le.AppendUint64(out, 0)           // e_shoff: no sections
	out = le.AppendUint32(out, 0)           // e_flags
	out = le.AppendUint16(out, elfHdrSize)  // e_ehsize
	out = le.AppendUint16(out, progHdrSize) // e_phentsize
	out = le.AppendUint16(out, numProgHdrs) // e_phnum
	out = le.AppendUint16(out, 0)           // e_shentsize
	out = le.AppendUint16(out, 0)           // e_shnum
	out = le.AppendUint16(out, 0)           // e_shstrndx
	// PT_LOAD: the whole file, readable and executable.
	out = le.AppendUint32(out, 1)             // p_type: PT_LOAD
	out = le.AppendUint32(out, 5)             // p_flags: R+X
	out = le.AppendUint64(out, 0)             // p_offset
	out = le.AppendUint64(out, pauseBase)     // p_vaddr
	out = le.AppendUint64(out, pauseBase)     // p_paddr
	out = le.AppendUint64(out, uint64(total)) // p_filesz
	out = le.AppendUint64(out, uint64(total)) // p_memsz
	out = le.AppendUint64(out, 0x1000)        // p_align
	// PT_GNU_STACK: a non-executable stack.
	out = le.AppendUint32(out, 0x6474E551)  // p_type: PT_GNU_STACK
	out = le.AppendUint32(out, 6)           // p_flags: R+W
	out = append(out, make([]byte, 6*8)...) // offsets, addresses, sizes: 0
	// struct kernel_sigaction {handler, flags, restorer, mask} for
	// SIGTERM/SIGINT, then for SIGCHLD (no stop notifications).
	for _, a := range []struct {
		handler int
		flags   uint64
	}{{exitHandler, saRestorer}, {chldHandler, saRestorer | saNoCldStop}} {
		out = le.AppendUint64(out, codeAddr(a.handler))
		out = le.AppendUint64(out, a.flags)
		out = le.AppendUint64(out, codeAddr(restorer))
		out = le.AppendUint64(out, 0) // nothing extra blocked in the handler
	}
	out = le.AppendUint64(out, 1<<(sigCHLD-1)) // maskChld
	out = le.AppendUint64(out, 0)              // maskNone
	if len(out) != codeOff {
		return nil, fmt.Errorf("pause image: header layout is %d bytes, want %d", len(out), codeOff)
	}
	return append(out, code...), nil
}

// WritePause writes the pause image (PauseImage) as an OCI archive.
func WritePause(w io.Writer) error {
	_, err := writePause(w)
	return err
}

func writePause(w io.Writer) (string, error) {
	bin, err := pauseELF()
	if err != nil {
		return "", err
	}
	l := newLayer()
	l.file("/pause", 0o755, bin)
	return writeImage(w, image{
		names: []string{PauseImage},
		arch:  "amd64",
		layer: l,
		config: imageConfig{
			Entrypoint: []string{"/pause"},
			User:       "65535:65535",
			WorkingDir: "/",
		},
		note: "skiff: hand-assembled pause program",
	})
}
