package main

import (
	"context"

	"github.com/stowage/stowage/store"
)

var mountCmd = &command{
	names: []string{"mount"}, synopsis: "[options [...]] LayerOrContainerNameOrID",
	usage: "Mount a layer or container", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &mountRun{} },
}

type mountRun struct {
	cmdBase
	readOnly bool
	label    string
	opt      string
}

// mountResult is mount's per-argument JSON record.
type mountResult struct {
	ID         string `json:"id"`
	MountPoint string `json:"mountpoint"`
	Error      string `json:"error"`
}

// idError is unmount's and mounted's per-argument JSON record.
type idError struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

func (c *mountRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.readOnly, []string{"-read-only", "-ro", "r"}, "Mount image readonly")
	fs.stringVar(&c.label, []string{"-label", "l"}, "Mount Label")
	fs.stringVar(&c.opt, []string{"-opt", "o"}, "Mount Options")
	c.jsonFlag(fs)
}

func (c *mountRun) run(ctx context.Context, st *store.Store, args []string) error {
	results := []mountResult{}
	failed := false
	opts := store.MountOptions{MountLabel: c.label}
	for _, arg := range args {
		var (
			mp  string
			err error
		)
		if c.readOnly {
			mp, err = st.MountImage(ctx, arg, opts)
		} else {
			mp, err = st.Mount(ctx, arg, opts)
		}
		r := mountResult{ID: arg, MountPoint: mp}
		if err != nil {
			r.Error = err.Error()
			failed = true
		}
		results = append(results, r)
	}
	if err := c.p.Output(c.json, results, func() {
		for _, r := range results {
			if r.Error != "" {
				c.p.Errorf("%s while mounting %s\n", r.Error, r.ID)
			}
			c.p.Printf("%s\n", r.MountPoint)
		}
	}); err != nil {
		return err
	}
	return failedStatus(failed)
}

var unmountCmd = &command{
	names: []string{"unmount", "umount"}, synopsis: "LayerOrContainerNameOrID",
	usage: "Unmount an image, layer or container", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &unmountRun{} },
}

type unmountRun struct {
	cmdBase
	force bool
}

func (c *unmountRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.force, []string{"-force", "f"}, "Force the umount")
	c.jsonFlag(fs)
}

func (c *unmountRun) run(ctx context.Context, st *store.Store, args []string) error {
	results := []idError{}
	failed := false
	for _, arg := range args {
		r := idError{ID: arg}
		stillMounted, err := st.Unmount(ctx, arg, c.force)
		if err != nil {
			// Maybe it was mounted as an image; report the first error.
			if _, err2 := st.UnmountImage(ctx, arg, c.force); err2 != nil {
				r.Error = err.Error()
				failed = true
			}
		} else if !stillMounted {
			c.p.Printf("%s mountpoint unmounted\n", arg)
		}
		results = append(results, r)
	}
	if err := c.p.Output(c.json, results, func() {
		for _, r := range results {
			if r.Error != "" {
				c.p.Errorf("%s while unmounting %s\n", r.Error, r.ID)
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(failed)
}

var mountedCmd = &command{
	names: []string{"mounted"}, synopsis: "LayerOrContainerNameOrID",
	usage: "Check if a file system is mounted", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &mountedRun{} },
}

type mountedRun struct{ cmdBase }

func (c *mountedRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *mountedRun) run(ctx context.Context, st *store.Store, args []string) error {
	results := []idError{}
	failed := false
	for _, arg := range args {
		r := idError{ID: arg}
		n, err := st.Mounted(ctx, arg)
		if err != nil {
			r.Error = err.Error()
			failed = true
		} else if n > 0 {
			c.p.Printf("%s mounted\n", arg)
		}
		results = append(results, r)
	}
	if err := c.p.Output(c.json, results, func() {
		for _, r := range results {
			if r.Error != "" {
				c.p.Errorf("%s checking if %s is mounted\n", r.Error, r.ID)
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(failed)
}
