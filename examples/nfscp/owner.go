package main

import (
	"io/fs"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/gonfs/nfs/nfs4"
)

// id is a file's owner or group as its file system reports it: a number,
// or, from an NFS server that maps IDs to names (Ganesha's default), a
// name such as "root@localdomain". nfscp compares the owners of a source
// and its copy to decide which set-ID bits the copy keeps (finalMode).
type id struct {
	n     uint32
	num   bool   // n is known
	name  string // "user@domain" from a server that sent a name
	group bool   // a group, not a user
}

// owners returns the owner and group of fi.
func owners(fi fs.FileInfo) (uid, gid id) {
	switch s := fi.Sys().(type) {
	case *syscall.Stat_t:
		return id{n: s.Uid, num: true}, id{n: s.Gid, num: true, group: true}
	case *nfs4.Attr:
		uid, gid = id{name: s.Owner}, id{name: s.OwnerGroup, group: true}
		uid.n, uid.num = s.UID()
		gid.n, gid.num = s.GID()
	}
	return uid, gid
}

// same reports whether a and b are known to be the same user (or group):
// the same name from a server, or the same number once a name is looked
// up in this system's user (group) database, as the kernel's NFS ID
// mapping would. The name's domain is not checked: a server is trusted
// to say whose a file is, as a mount trusts it. Unknown never matches.
func (a id) same(b id) bool {
	if a.group != b.group {
		return false
	}
	if !a.num && !b.num {
		return a.name != "" && a.name == b.name
	}
	an, aok := a.local()
	bn, bok := b.local()
	return aok && bok && an == bn
}

// local returns a's number on this system.
func (a id) local() (uint32, bool) {
	if a.num {
		return a.n, true
	}
	name, _, _ := strings.Cut(a.name, "@")
	if name == "" {
		return 0, false
	}
	var s string
	if a.group {
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, false
		}
		s = g.Gid
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, false
		}
		s = u.Uid
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}
