package overlay

import (
	"fmt"
	"strings"

	"github.com/stowage/stowage/driver"
)

// planInput is everything a mount depends on.
type planInput struct {
	Diff, Work, Empty string   // H/<id>/diff, work and empty
	Lowers            []string // lower diff dirs, nearest first
	CallerOptions     []string // MountOptions.Options
	MountOpt          string   // the driver's mountopt ("nodev,metacopy=on")
	Label             string   // SELinux mount label
	Rootless          bool     // overlay xattrs must be user.overlay.*
	Metacopy          bool     // the kernel honours metacopy=on
	ReadOnlyStore     bool     // the layer lives in a read-only store
	Volatile          bool     // MountOptions.Volatile: the caller asks for "volatile"
	VolatileOK        bool     // the kernel accepts "volatile" (probed)
}

// mountPlan is one overlay mount: what the syscall layer executes.
type mountPlan struct {
	Lowers      []string // lowerdir entries, top first
	Upper, Work string   // "" for a read-only mount
	Attrs       uint64   // MOUNT_ATTR_* (fsmount)
	Flags       uintptr  // MS_* (classic mount)
	Data        []string // file system options: "key" or "key=value"
}

// ReadOnly reports whether the mount has no upper layer.
func (p mountPlan) ReadOnly() bool { return p.Upper == "" }

// flagOpt is a mount option word that is a mount flag, not fs data.
type flagOpt struct {
	attr  uint64
	flag  uintptr
	clear bool // "rw", "dev", ... undo an earlier word
}

// flagWords are the flag words accepted in mount options. Attribute and
// flag values are Linux's (MOUNT_ATTR_*, MS_*), spelled out so this file
// builds everywhere.
var flagWords = map[string]flagOpt{
	"ro":          {attr: 0x1, flag: 0x1},
	"rw":          {attr: 0x1, flag: 0x1, clear: true},
	"nosuid":      {attr: 0x2, flag: 0x2},
	"suid":        {attr: 0x2, flag: 0x2, clear: true},
	"nodev":       {attr: 0x4, flag: 0x4},
	"dev":         {attr: 0x4, flag: 0x4, clear: true},
	"noexec":      {attr: 0x8, flag: 0x8},
	"exec":        {attr: 0x8, flag: 0x8, clear: true},
	"noatime":     {attr: 0x10, flag: 0x400},
	"nodiratime":  {attr: 0x80, flag: 0x800},
	"relatime":    {attr: 0x0, flag: 0x200000},
	"strictatime": {attr: 0x20, flag: 0x1000000},
}

// dataKeys are the overlay options a caller or mountopt may give; the
// layer dirs (lowerdir, upperdir, workdir, datadir) are the driver's.
var dataKeys = map[string]bool{
	"metacopy": true, "redirect_dir": true, "index": true, "volatile": true,
	"userxattr": true, "xino": true, "nfs_export": true, "uuid": true,
	"context": true, "fscontext": true, "defcontext": true, "rootcontext": true,
	"default_permissions": true, "verity": true,
}

// planMount builds the mount of one layer: options from the caller, else
// mountopt; metacopy=on added when mountopt has it and the kernel honours
// it, stripped when it does not; index=off unless given; userxattr when
// rootless; "volatile" when asked for and the kernel has it (see
// planInput). "ro" (or a read-only store) mounts diff as the top lower with
// no upper. Without lowers, empty/ is the lower. More than maxDepth lowers
// fail wrapping ErrMaxDepth; driver-owned or unknown options fail wrapping
// driver.ErrBadMountOpt.
func planMount(in planInput) (mountPlan, error) {
	opts := in.CallerOptions
	global := splitOpts(in.MountOpt)
	if len(opts) == 0 {
		opts = global
	} else if hasMetacopy(global) && !hasMetacopy(opts) {
		opts = append(append([]string(nil), opts...), "metacopy=on")
	}
	var p mountPlan
	readOnly := in.ReadOnlyStore
	hasIndex, hasUserxattr, hasVolatile := false, false, false
	for _, o := range opts {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if f, ok := flagWords[o]; ok {
			if f.clear {
				p.Attrs &^= f.attr
				p.Flags &^= f.flag
			} else {
				p.Attrs |= f.attr
				p.Flags |= f.flag
			}
			if o == "ro" {
				readOnly = true
			}
			continue
		}
		key, _, _ := strings.Cut(o, "=")
		if !dataKeys[key] {
			return mountPlan{}, fmt.Errorf("overlay mount option %q: %w", o, driver.ErrBadMountOpt)
		}
		if key == "metacopy" && !in.Metacopy {
			continue // the kernel would ignore or refuse it
		}
		hasIndex = hasIndex || key == "index"
		hasUserxattr = hasUserxattr || key == "userxattr"
		hasVolatile = hasVolatile || key == "volatile"
		p.Data = append(p.Data, o)
	}
	if readOnly {
		p.Attrs |= flagWords["ro"].attr
		p.Flags |= flagWords["ro"].flag
	}
	if !hasIndex {
		p.Data = append(p.Data, "index=off")
	}
	// Like upstream: "volatile" asked for by the caller is added when the
	// kernel has it and silently dropped when not; a mount without an
	// upper layer has nothing to be volatile about.
	if in.Volatile && in.VolatileOK && !readOnly && !hasVolatile {
		p.Data = append(p.Data, "volatile")
	}
	if in.Rootless && !hasUserxattr {
		p.Data = append(p.Data, "userxattr")
	}
	if in.Label != "" {
		p.Data = append(p.Data, fmt.Sprintf("context=%q", in.Label))
	}
	lowers := in.Lowers
	if len(lowers) == 0 {
		lowers = []string{in.Empty}
	}
	if readOnly {
		p.Lowers = append([]string{in.Diff}, lowers...)
	} else {
		p.Lowers = append([]string(nil), lowers...)
		p.Upper, p.Work = in.Diff, in.Work
	}
	if len(p.Lowers) > maxDepth {
		return mountPlan{}, fmt.Errorf("%d lowers, the kernel stacks at most %d: %w", len(p.Lowers), maxDepth, ErrMaxDepth)
	}
	return p, nil
}

// optionString is the mount(2) data string of p (lowerdir, upperdir,
// workdir, then the data options).
func (p mountPlan) optionString() string {
	parts := []string{"lowerdir=" + strings.Join(p.Lowers, ":")}
	if p.Upper != "" {
		parts = append(parts, "upperdir="+p.Upper, "workdir="+p.Work)
	}
	return strings.Join(append(parts, p.Data...), ",")
}

// splitOpts splits a comma-separated option list, dropping empty items.
func splitOpts(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func hasMetacopy(opts []string) bool {
	for _, o := range opts {
		if o == "metacopy=on" {
			return true
		}
	}
	return false
}
