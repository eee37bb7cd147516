//go:build !linux

package testdb

import "syscall"

// processAttr: switching users and the parent-death signal are Linux's; elsewhere the servers
// run as this process's user (PostgreSQL then refuses to start as root).
func processAttr(_ *osUser, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}

// processGone: without a portable check, every owner counts as alive.
func processGone(int) bool { return false }
