// Package knfsd runs the Linux kernel's NFS server (knfsd) for tests, in a
// user-mode Linux (UML) guest: the host kernel has no nfsd and there is no
// KVM, but Debian's user-mode-linux kernel runs as ordinary processes and
// has nfsd as a module.
//
//	srv := knfsd.Start(t, knfsd.Config{})          // a server of its own
//	srv := knfsd.Shared(t)                         // or one per test binary
//	srv, err := knfsd.Boot(knfsd.Config{}, logf)   // or outside a test; call srv.Stop
//	c, err := nfs4.Dial(ctx, srv.Addr(), nfs4.Config{}) // NFSv4 root is srv.Root(), "/"
//
// knfsd is optional unless the environment sets GONFS_REQUIRE_GANESHA=1
// (the variable packages ganesha and netlab read; make test sets it):
// without it, a machine that cannot run the guest, or a server that does
// not start, skips the test; with it, the test fails.
//
// # The guest image (cached)
//
// The guest is a directory under CacheDir, /var/cache/gonfs/knfsd by
// default: an ext4 image of a Debian trixie root file system (debootstrap
// --variant=minbase plus nfs-kernel-server, kmod, iproute2, procps and
// ktls-utils) holding the UML kernels' modules, and two UML kernels with
// their loader and libc. The first comes from Debian unstable's
// user-mode-linux package; the image.go comment says why (the older ones
// die at init on hosts with AMX) and how it is installed. The second is
// built from unstable's kernel source for TLS servers, which need it for
// mutual TLS (mtlskernel.go says why and how). The first Start on a
// machine builds the guest (about 10 minutes on 2 cores, most of it the
// kernel build; logged on standard error), named by a hash of the
// recipe, so that a change of it builds a new one (and removes the guests
// of other recipes once they are a week old: another checkout may still
// use one). The build holds an flock on
// CacheDir/lock, so concurrent test processes build it once, and renames
// the finished guest into place; a process that finds the lock taken logs
// that it waits. EnsureImage (and TestImage, which make test runs before
// the other tests) builds it ahead of any Start. The build uses the Debian
// mirror apt's sources name ($GONFS_KNFSD_MIRROR overrides it). Every
// guest runs on a copy-on-write layer of its own (ubd0=COW,IMAGE), so the
// image stays clean.
//
// # What the guest runs
//
// The image's PID 1 mounts the server's StateDir from the host (hostfs,
// named by hostfs= on the kernel command line)
// and runs the init.sh that Start wrote there: it sets a host name of the
// server's own (nfsd's server owner and scope, so that two guests are two
// servers to a client), mounts the export, sets
// up vec0 (the network), loads nfsd, starts rpc.mountd and nfsdcld (NFSv4 client
// records, which survive RestartNFSD so that clients reclaim), writes
// nfsv4leasetime, nfsv4gracetime and max_block_size (1 MiB) and runs
// rpc.nfsd with the configured minor versions (never NFSv2 or v3); with
// Config.TLS it starts tlshd first (tls.go), with Config.Kerberos
// rpc.svcgssd (kerberos.go). Then it
// serves a control channel on its serial line (two pipes to the test
// process) on which Exec runs shell scripts; RestartNFSD (rpc.nfsd 0, then
// start again) and SetVersions use it. The guest's console (kernel
// messages and init.sh's trace) goes to StateDir/console.log, whose end a
// failed test logs. One guest CPU: a boot takes about 2 s on an idle
// machine, more on a busy one.
//
// # The export: an ext4 disk in the guest, not a host directory
//
// nfsd cannot export hostfs (exportfs: "does not support NFS export":
// hostfs has no export operations, so no file handles), so the export is
// an ext4 file system on a second UBD disk, a sparse file in StateDir
// (Config.DiskSize, 4 GiB by default), mounted at ExportPath in the guest
// and exported as the NFSv4 root (fsid=0) with
// rw,no_root_squash,sync,no_subtree_check, `secure` unless Config.Insecure.
// There is no ExportDir on the host: tests reach the export's files from
// the server's side with WriteFile and ReadFile (copied through StateDir
// by the guest) and Exec (a script in the guest; the export is at
// ExportPath). Changes made so are seen by nfsd at once: they are the same
// kernel's file system.
//
// # Network: a tap in a namespace, a forwarder on loopback
//
// The guest's vec0 is attached to a tap device inside a network namespace made for it
// (named like netlab's, "gonfslab-PID-kN-knfsd", so that netlab.Sweep
// removes the namespaces of test processes that were killed; Start runs
// Sweep once per process). The guest is 10.99.0.2 there, the tap
// 10.99.0.1; nothing connects the namespace to the host's network.
//
// Addr is a forwarder in the test process on 127.0.0.1: it accepts each
// connection and dials the guest from a socket made inside the namespace
// (setns on a locked thread; the socket keeps its namespace). Source
// ports: a connection from a reserved port (below 1024) is relayed from a
// reserved port, the same number when it is free in the namespace and
// another one of 665–1023 otherwise (the same port may still be in
// TIME_WAIT there after a reconnect); one from an unreserved port is
// relayed from an ephemeral port. So the `secure` export sees a reserved
// port exactly when the client used one, as the default client policy
// does when the test runs as root, but not always the client's own
// number, and never its address (the server sees 10.99.0.1). Tests that
// need the server to see the exact port use DialNS, which connects from
// inside the namespace with no forwarder. ResetConnections closes every
// relayed connection, as a network failure would. NetBytes reads the tap's
// counters: what crossed the guest's network, both ways.
//
// # Processes and cleanup
//
// The guest runs as `ip netns exec NS unshare --pid --fork --kill-child
// CacheDir/guest-*/linux.uml ...`, started from a thread that lives as long as the test process,
// in its own process group with SIGKILL as its parent-death signal. UML
// starts many host processes and calls setsid, so a process-group kill
// misses them, and its helper processes outlive the UML kernel process
// alone; in a PID namespace of their own, the kernel kills them all when
// the namespace's first process dies, which --kill-child makes it do when
// unshare dies, which its parent-death signal makes it do when the test
// process dies. Stop (and the cleanup Start registers) kills the group by
// PID, checks with `ip netns pids` that no process is left in the
// namespace (killing any by PID, and failing, if one is), deletes the
// namespace with its tap, and closes the forwarder. A test process killed
// outright takes its guests with it (parent-death signals), but leaves
// its namespaces and a Shared server's StateDir ($TMPDIR/gonfs-knfsd-PID-*):
// the next Start in any process removes those of processes that are gone.
//
// Pause stops the UML kernel's process (SIGSTOP), as a hung server, until
// Resume; pause.go says what a client sees of it through Addr.
//
// Shared starts one server for the whole test binary; TestMain should call
// StopShared after m.Run. Tests that reconfigure a server need one of their
// own (Start); tests that are not parallel may restart the shared one's
// nfsd threads as a crash (nfs4's and nfscp's forEachServer do).
package knfsd
