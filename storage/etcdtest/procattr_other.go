//go:build !linux

package etcdtest

import "syscall"

// procAttr has nothing to add where the kernel cannot tie etcd's life to
// the test process.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
