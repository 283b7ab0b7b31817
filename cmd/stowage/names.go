package main

import (
	"context"

	"github.com/stowage/stowage/store"
)

var getNamesCmd = &command{
	names: []string{"get-names", "getnames"}, synopsis: "[options [...]] imageOrContainerNameOrID",
	usage: "Get layer, image, or container name or names", minArgs: 1, maxArgs: 1,
	newRun: func() runner { return &namesRun{op: "get"} },
}

var addNamesCmd = &command{
	names: []string{"add-names", "addnames"}, synopsis: "[options [...]] imageOrContainerNameOrID",
	usage: "Add layer, image, or container name or names", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &namesRun{op: "add"} },
}

var setNamesCmd = &command{
	names: []string{"set-names", "setnames"}, synopsis: "[options [...]] imageOrContainerNameOrID",
	usage: "Set layer, image, or container name or names", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &namesRun{op: "set"} },
}

var removeNamesCmd = &command{
	names: []string{"remove-names", "removenames"}, synopsis: "[options [...]] imageOrContainerNameOrID",
	usage: "Remove layer, image, or container name or names", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &namesRun{op: "remove"} },
}

// namesRun implements get-names, add-names, set-names and remove-names;
// like upstream only the first argument is used.
type namesRun struct {
	cmdBase
	op    string
	names []string
}

func (c *namesRun) addFlags(fs *flagSet) {
	if c.op != "get" {
		fs.listVar(&c.names, []string{"-name", "n"}, "New name")
	}
	c.jsonFlag(fs)
}

func (c *namesRun) run(ctx context.Context, st *store.Store, args []string) error {
	id, _, err := st.Lookup(ctx, args[0])
	if err != nil {
		return err
	}
	switch c.op {
	case "add":
		err = st.AddNames(ctx, id, c.names)
	case "set":
		err = st.SetNames(ctx, id, c.names)
	case "remove":
		err = st.RemoveNames(ctx, id, c.names)
	}
	if err != nil {
		return err
	}
	if c.op != "get" && !c.json {
		return nil
	}
	names, err := st.Names(ctx, id)
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	return c.p.Output(c.json, names, func() {
		for _, n := range names {
			c.p.Printf("%s\n", n)
		}
	})
}
