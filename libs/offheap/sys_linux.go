//go:build linux

package offheap

import "syscall"

const supported = true

// madvHugePage is MADV_HUGEPAGE (the syscall package does not name it).
const madvHugePage = 14

// mapAligned maps n bytes (a multiple of PageSize) of anonymous memory
// aligned to PageSize, advised for huge pages.
func mapAligned(n int) ([]byte, error) {
	raw, err := syscall.Mmap(-1, 0, n+PageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	// Unmap the unaligned head and the tail past n. syscall.Munmap only
	// unmaps whole mappings it made, so this calls the kernel directly
	// (nothing here is ever unmapped through the syscall package).
	head := int((PageSize - base(raw)%PageSize) % PageSize)
	if head > 0 {
		if err := munmap(raw[:head]); err != nil {
			return nil, err
		}
	}
	if tail := raw[head+n:]; len(tail) > 0 {
		if err := munmap(tail); err != nil {
			return nil, err
		}
	}
	mem := raw[head : head+n : head+n]
	// A kernel without transparent huge pages refuses the advice; the
	// memory works the same with small pages.
	_ = syscall.Madvise(mem, madvHugePage)
	return mem, nil
}

func munmap(b []byte) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MUNMAP, base(b), uintptr(len(b)), 0); errno != 0 {
		return errno
	}
	return nil
}

// release gives a page's memory back to the kernel; the range stays
// mapped and reads as zeros until written again.
func release(b []byte) error { return syscall.Madvise(b, syscall.MADV_DONTNEED) }

// AdviseHuge advises the 2 MiB-aligned pages inside b for transparent huge
// pages (a no-op for the part of b outside them, or when the kernel does
// not have them). b's memory must not have been touched yet for the advice
// to matter: pages already resident stay small until the kernel's
// background collapse.
func AdviseHuge(b []byte) {
	if cap(b) == 0 {
		return
	}
	start := (base(b) + PageSize - 1) &^ (PageSize - 1)
	end := (base(b) + uintptr(cap(b))) &^ (PageSize - 1)
	if end <= start {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvHugePage)
}
