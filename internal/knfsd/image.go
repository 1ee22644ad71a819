package knfsd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gonfs/nfs/internal/proc"
)

// The guest's recipe. Changing any of it changes the guest's key, so the
// next Start builds a new guest instead of using a stale one.
//
// The guest is a Debian trixie root file system that carries its own UML
// kernel, taken from Debian unstable's user-mode-linux package (7.x):
// Debian 12's UML kernel (6.1) and Debian 13's (6.12) die at init on a
// host whose CPU has AMX (Linux 6.18 host, "ptrace set fp regs failed,
// errno = 14": the host's XSAVE area is larger than the buffer these
// kernels hand to ptrace), and unstable's does not. Trixie has what the
// TLS guest needs besides (tlshd, from ktls-utils). The build installs
// the kernel package into the tree from unstable (apt in the chroot; its
// only dependency, libc6, comes from trixie), copies the kernel binary
// out, patched (patchelf, run inside the tree) to use the tree's dynamic
// loader and libc, since the host's glibc may be older than the binary
// needs (2.38), and copies the loader and libc next to it. The kernel is
// whatever unstable has when the guest is built; a built guest is kept
// (its kernel-version file says which), so the kernel changes only when
// the recipe does or the cache is emptied. A second kernel, for mutual
// TLS, is built from source in a copy of the tree (mtlskernel.go).
const (
	// recipeVersion is bumped when the build steps below change in a way
	// the other inputs of the key do not show.
	recipeVersion = 3
	// suite is the Debian release debootstrap installs in the guest.
	suite = "trixie"
	// kernelSuite is the Debian release the UML kernel comes from.
	kernelSuite = "sid"
	// imageSize is the size of the (sparse) root file system image; the
	// files take about 250 MB of it.
	imageSize = "1G"
	// buildTimeout bounds a build: the guest alone took 6 min on a busy
	// 2-core machine, 10 min on one at load 19; the mutual-TLS kernel
	// adds about 9 min on 2 shared cores (mtlskernel.go).
	buildTimeout = 45 * time.Minute
	// lockTimeout bounds the wait for another process's build.
	lockTimeout = buildTimeout + time.Minute
)

// packages are installed in the guest besides debootstrap's minbase;
// patchelf is there for the build (patching the kernel binary).
var packages = []string{"nfs-kernel-server", "kmod", "iproute2", "procps", "ktls-utils", "patchelf"}

// kernelPackage is installed from kernelSuite.
const kernelPackage = "user-mode-linux"

// trimmed are removed from the root file system after the build: nothing
// in the guest reads them.
var trimmed = []string{
	"usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info",
	"var/cache/apt", "var/lib/apt/lists", "usr/lib/uml", "usr/bin/linux.uml",
}

// bootInit is the guest's PID 1, baked into the image. It mounts the
// server's state directory from the host (hostfs; the kernel command
// line's hostfs= names it) and runs the init.sh that Start wrote there, so
// that everything per server stays out of the cached image.
const bootInit = `#!/bin/sh
# PID 1 of a gonfs knfsd guest (internal/knfsd): mount the server's state
# directory (hostfs= on the kernel command line) and run its init.sh.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /gonfs
if ! mount -t hostfs none /gonfs; then
	echo "gonfs-init: cannot mount the state directory"
	exit 1
fi
exec /bin/sh /gonfs/init.sh
`

// CacheEnv names the environment variable that overrides CacheDir.
const CacheEnv = "GONFS_KNFSD_CACHE"

// MirrorEnv names the environment variable that overrides the Debian
// mirror the build uses (default: the one apt's sources name for the
// host's release).
const MirrorEnv = "GONFS_KNFSD_MIRROR"

// CacheDir returns the directory holding cached guests: $GONFS_KNFSD_CACHE,
// or /var/cache/gonfs/knfsd.
func CacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return "/var/cache/gonfs/knfsd"
}

// guestKey identifies a guest built by this recipe.
func guestKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %d\nsuite %s\nkernel %s/%s\nsize %s\n", recipeVersion, suite, kernelPackage, kernelSuite, imageSize)
	fmt.Fprintf(h, "packages %s\ntrimmed %s\ninit %s\n", strings.Join(packages, ","), strings.Join(trimmed, ","), bootInit)
	fmt.Fprintf(h, "mtls build %s\n%s\n", strings.Join(mtlsBuildPackages, ","), mtlsBuildScript)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// guest is a built guest: its directory in the cache holds rootfs.ext4,
// linux.uml (Debian's kernel), linux-mtls.uml (the mutual-TLS kernel,
// mtlskernel.go), lib/ (their loader and libc) and kernel-version.
type guest struct{ dir string }

func (g guest) image() string  { return filepath.Join(g.dir, "rootfs.ext4") }
func (g guest) kernel() string { return filepath.Join(g.dir, "linux.uml") }

// version returns the kernels' versions and releases, as the build
// recorded them.
func (g guest) version() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "kernel-version"))
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "; ")
}

// guestPrefix starts the names of cached guests in CacheDir.
const guestPrefix = "guest-"

// cachedGuest returns the guest of this recipe (which may not be built).
func cachedGuest() guest {
	return guest{dir: filepath.Join(CacheDir(), guestPrefix+suite+"-"+guestKey())}
}

// built reports whether g is complete: the kernel, renamed into place
// last, marks a finished guest.
func (g guest) built() bool {
	_, err := os.Stat(g.kernel())
	return err == nil
}

// EnsureImage builds the guest unless it is cached already, and returns
// its directory. Start does this itself; calling it first (make test
// does, through TestImage) keeps the build out of any test's time.
func EnsureImage() (string, error) {
	g, err := ensureGuest(func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) })
	return g.dir, err
}

// ensureGuest returns the cached guest, building it first if it does not
// exist. The build holds an exclusive lock on CacheDir/lock, so that
// concurrent test processes build it once, and renames the finished
// guest into place, so that no one sees half of it. logf reports a build.
func ensureGuest(logf func(format string, args ...any)) (guest, error) {
	g := cachedGuest()
	if g.built() {
		return g, nil
	}
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return g, fmt.Errorf("knfsd: %w", err)
	}
	unlock, err := lockFile(filepath.Join(CacheDir(), "lock"), lockTimeout, func() {
		logf("knfsd: waiting for another process to build %s", g.dir)
	})
	if err != nil {
		return g, err
	}
	defer unlock()
	if g.built() {
		return g, nil // another process built it while we waited
	}
	removeStale(g)
	start := time.Now()
	logf("knfsd: building the guest %s (debootstrap %s, the UML kernel from %s, and a UML kernel for mutual TLS built from source; about 10 minutes on 2 cores, once per recipe; make knfsd-image builds it outside any test's timeout)", g.dir, suite, kernelSuite)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if err := buildGuest(ctx, g); err != nil {
		return g, err
	}
	logf("knfsd: built %s (kernel %s, image %s on disk) in %v", g.dir, g.version(), imageSizeBytes(g.image()), time.Since(start).Round(time.Second))
	return g, nil
}

// keepOthers is how long the guests of other recipes are kept after they
// were built. Two checkouts with different recipes on one machine (two
// branches) would otherwise delete each other's guest at every build,
// and each build takes about 10 minutes.
const keepOthers = 7 * 24 * time.Hour

// removeStale removes from CacheDir the guests of other recipes built
// more than keepOthers ago, those of earlier layouts (rootfs-*.ext4
// images, tls-* guests) and the build directories of builds that died.
// The caller holds the lock.
func removeStale(keep guest) {
	for _, pattern := range []string{guestPrefix + "*", "rootfs-*.ext4", "tls-*", "build-*", "tlsbuild-*", "lock-tls"} {
		old, _ := filepath.Glob(filepath.Join(CacheDir(), pattern))
		for _, p := range old {
			if p == keep.dir {
				continue
			}
			if fi, err := os.Stat(p); err == nil && pattern == guestPrefix+"*" && time.Since(fi.ModTime()) < keepOthers {
				continue
			}
			os.RemoveAll(p)
		}
	}
}

// lockFile takes an exclusive flock on path, waiting up to timeout, and
// returns its release. It calls waiting once if it has to wait.
func lockFile(path string, timeout time.Duration, waiting func()) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("knfsd: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("knfsd: lock %s (another test process building the image?): %w", path, err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// buildGuest builds into a directory of its own under CacheDir and renames
// it to g.dir. The kernel binary is patched for g.dir, its final place.
// The caller holds the lock.
func buildGuest(ctx context.Context, g guest) error {
	mirror, err := debianMirror()
	if err != nil {
		return err
	}
	out, err := os.MkdirTemp(CacheDir(), "build-")
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	defer os.RemoveAll(out)
	root := filepath.Join(out, "root")
	log := filepath.Join(out, "build.log")
	if err := run(ctx, log, "debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","), suite, root, mirror); err != nil {
		return err
	}
	// The kernel from kernelSuite: apt in the chroot, with that suite's
	// sources beside trixie's and the host's resolver. Unstable's Release
	// file is valid for a week only, and a mirror that is a frozen
	// snapshot serves it expired; its signature is still checked.
	sid := fmt.Sprintf("deb %s %s main\n", mirror, kernelSuite)
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/gonfs-kernel.list"), []byte(sid), 0o644); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	steps := [][]string{
		{"cp", "-L", "/etc/resolv.conf", filepath.Join(root, "etc/resolv.conf")},
		{"chroot", root, "apt-get", "-q", "-o", "Acquire::Check-Valid-Until=false", "update"},
		{"chroot", root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", "--no-install-recommends", "install", kernelPackage + "/" + kernelSuite},
	}
	for _, args := range steps {
		if err := run(ctx, log, args...); err != nil {
			return err
		}
	}
	version, err := exec.CommandContext(ctx, "chroot", root, "dpkg-query", "-W", "-f", "${Version}", kernelPackage).Output()
	if err != nil {
		return fmt.Errorf("knfsd: the kernel package's version: %w", err)
	}
	mods, err := filepath.Glob(filepath.Join(root, "usr/lib/uml/modules/*"))
	if err != nil || len(mods) != 1 {
		return fmt.Errorf("knfsd: want one UML kernel release in the guest tree, found %v", mods)
	}
	if _, err := os.Stat(filepath.Join(mods[0], "kernel/fs/nfsd/nfsd.ko")); err != nil {
		return fmt.Errorf("knfsd: the UML kernel has no nfsd module: %w", err)
	}
	// The series ("7.2" of release "7.2.7") names the source package of
	// the mutual-TLS kernel, built while the tree still has unstable's
	// sources.
	f := strings.SplitN(filepath.Base(mods[0]), ".", 3)
	if len(f) < 2 {
		return fmt.Errorf("knfsd: the UML kernel's release %q", filepath.Base(mods[0]))
	}
	lib := filepath.Join(g.dir, "lib")
	mtls, err := buildMTLSKernel(ctx, log, root, out, f[0]+"."+f[1], lib)
	if err != nil {
		return err
	}
	steps = [][]string{
		{"rm", "-f", filepath.Join(root, "etc/apt/sources.list.d/gonfs-kernel.list")},
		{"mkdir", "-p", filepath.Join(out, "lib"), filepath.Join(root, "lib/modules")},
		{"cp", "-L", filepath.Join(root, "lib64/ld-linux-x86-64.so.2"), filepath.Join(out, "lib/")},
		{"cp", "-L", filepath.Join(root, "lib/x86_64-linux-gnu/libc.so.6"), filepath.Join(out, "lib/")},
		{"cp", "-a", mods[0], filepath.Join(root, "lib/modules/")},
		{"cp", filepath.Join(root, "usr/bin/linux.uml"), filepath.Join(root, "tmp/linux.uml")},
		{"chroot", root, "patchelf", "--set-interpreter", filepath.Join(lib, "ld-linux-x86-64.so.2"), "--set-rpath", lib, "/tmp/linux.uml"},
		{"mv", filepath.Join(root, "tmp/linux.uml"), filepath.Join(out, "linux.uml.new")},
	}
	for _, p := range trimmed {
		steps = append(steps, []string{"rm", "-rf", filepath.Join(root, p)})
	}
	for _, args := range steps {
		if err := run(ctx, log, args...); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "sbin/gonfs-init"), []byte(bootInit), 0o755); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	release := fmt.Sprintf("%s %s (release %s)\n", kernelPackage, version, filepath.Base(mods[0])) + mtls
	if err := os.WriteFile(filepath.Join(out, "kernel-version"), []byte(release), 0o644); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	if err := run(ctx, log, "mkfs.ext4", "-q", "-F", "-L", "gonfsroot", "-d", root, filepath.Join(out, "rootfs.ext4"), imageSize); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	if err := os.Chmod(out, 0o755); err != nil { // MkdirTemp made it 0700
		return fmt.Errorf("knfsd: %w", err)
	}
	os.Remove(log)
	if err := os.Rename(out, g.dir); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	// The kernel last: its presence marks a finished guest.
	if err := os.Rename(filepath.Join(g.dir, "linux.uml.new"), g.kernel()); err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	return nil
}

// run runs a build step, appending its output to log; its error quotes
// the end of the log.
func run(ctx context.Context, log string, args ...string) error {
	out, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("knfsd: %w", err)
	}
	defer out.Close()
	fmt.Fprintf(out, "=== %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("knfsd: image build: %s: %w\n%s", strings.Join(args, " "), err, proc.Tail(log, 20))
	}
	return nil
}

// debianMirror returns the Debian mirror for debootstrap: $GONFS_KNFSD_MIRROR,
// or the first URI apt's sources use for a Debian release (this machine
// may reach Debian only through that one), or deb.debian.org.
func debianMirror() (string, error) {
	if m := os.Getenv(MirrorEnv); m != "" {
		return m, nil
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, f := range files {
		if m := mirrorIn(f); m != "" {
			return m, nil
		}
	}
	return "http://deb.debian.org/debian", nil
}

// mirrorIn returns the URI that the apt sources file at path gives for
// a Debian release, "" if none.
func mirrorIn(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return parseSources(f, strings.HasSuffix(path, ".sources"))
}

// parseSources reads one-line ("deb [opts] URI SUITE COMPONENTS") or
// deb822 (.sources) apt sources and returns the first URI for a Debian
// release (not its -updates or -security suites, which are elsewhere).
func parseSources(r io.Reader, deb822 bool) string {
	sc := bufio.NewScanner(r)
	if !deb822 {
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 3 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if strings.HasPrefix(f[0], "[") {
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				if len(f) == 0 {
					continue
				}
				f = f[1:]
			}
			if len(f) >= 2 && isRelease(f[1]) {
				return f[0]
			}
		}
		return ""
	}
	stanza := map[string]string{}
	check := func() string {
		defer clear(stanza)
		if !strings.Contains(" "+stanza["types"]+" ", " deb ") {
			return ""
		}
		if !slices.ContainsFunc(strings.Fields(stanza["suites"]), isRelease) {
			return ""
		}
		if u := strings.Fields(stanza["uris"]); len(u) > 0 {
			return u[0]
		}
		return ""
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if m := check(); m != "" {
				return m
			}
			continue
		}
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if ok {
			stanza[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return check()
}

// isRelease reports whether suite names a Debian release whose archive
// has the guest's suite and kernelSuite too.
func isRelease(suite string) bool {
	switch suite {
	case "bookworm", "trixie", "forky", "duke", "sid", "stable", "testing", "unstable":
		return true
	}
	return false
}

// imageSizeBytes returns the space the cached image takes on disk (it is
// sparse), for reports.
func imageSizeBytes(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "?"
	}
	return strconv.FormatInt(st.Blocks*512>>20, 10) + " MiB"
}
