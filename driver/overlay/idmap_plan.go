package overlay

import (
	"path/filepath"
	"strconv"

	"github.com/stowage/stowage/internal/idmap"
)

// Names and switches of ID mapping on overlay.
const (
	// mappedName is H/<id>/mapped: mountpoints of the idmapped views of
	// the lowers while a mount is being made (detached right after).
	mappedName = "mapped"
	// disableIDMapEnv set to "yes" turns idmapped lowers off, as in
	// containers/storage: layers are then chowned to their maps.
	disableIDMapEnv = "_CONTAINERS_OVERLAY_DISABLE_IDMAP"
	// idmapFeature is the name of the cached probe result in R/overlay
	// (idmapped-lower-dir-true or -false), shared with containers/storage.
	idmapFeature = "idmapped-lower-dir"
)

// numberedDiff is the name of a layer's i-th diff dir: diff, diff1, diff2...
// diff1 and up hold ID-remapped copies of the layer's lowers (see reown);
// they stack under diff, lowest number first.
func numberedDiff(i int) string {
	if i == 0 {
		return diffName
	}
	return diffName + strconv.Itoa(i)
}

// rotateDiffs lists the renames that free "diff" when a layer has n
// numbered diff dirs (diff .. diff<n-1>): each moves one number up,
// highest first, so diff becomes diff1.
func rotateDiffs(n int) [][2]string {
	out := make([][2]string, 0, n)
	for i := n; i > 0; i-- {
		out = append(out, [2]string{numberedDiff(i - 1), numberedDiff(i)})
	}
	return out
}

// idmapPlan is how the lowers of one mount are seen through idmapped
// mounts: Roots[i] is cloned with the maps onto <mapped dir>/<i>, and
// Lowers are the mount's lowers rewritten to paths inside those clones.
type idmapPlan struct {
	Roots  []string
	Lowers []string
}

// planIDMappedLowers maps every lower except skip (the layer's own diff,
// which a read-only mount stacks as its top lower and which, as an
// upper, is never idmapped). The idmapped root of a lower is the driver
// home holding it (one mount covers all its layers, as v1.43 maps the
// whole home through l/), else its parent directory, or for a path
// through l/ the directory holding l. Roots are listed once, in the
// order first needed.
func planIDMappedLowers(mappedDir string, homes, lowers []string, skip string) idmapPlan {
	isHome := map[string]bool{}
	for _, h := range homes {
		isHome[filepath.Clean(h)] = true
	}
	index := map[string]int{}
	var p idmapPlan
	for _, l := range lowers {
		if l == skip {
			p.Lowers = append(p.Lowers, l)
			continue
		}
		root := mappedRoot(l, isHome)
		i, ok := index[root]
		if !ok {
			i = len(p.Roots)
			index[root] = i
			p.Roots = append(p.Roots, root)
		}
		rel, err := filepath.Rel(root, l)
		if err != nil {
			rel = filepath.Base(l) // unreachable: root is an ancestor of l
		}
		p.Lowers = append(p.Lowers, filepath.Join(mappedDir, strconv.Itoa(i), rel))
	}
	return p
}

// mappedRoot is the directory whose idmapped clone shows lower.
func mappedRoot(lower string, isHome map[string]bool) string {
	parent := filepath.Dir(filepath.Clean(lower))
	if home := filepath.Dir(parent); isHome[home] {
		return home
	}
	if filepath.Base(parent) == linkDir {
		return filepath.Dir(parent)
	}
	return parent
}

// usernsMapLines is the /proc/<pid>/uid_map (or gid_map) text of maps;
// an empty mapping maps every ID to itself, for a caller that gave only
// the other side.
func usernsMapLines(maps []idmap.IDMap) string {
	if len(maps) == 0 {
		return "0 0 4294967295\n"
	}
	var b []byte
	for _, m := range maps {
		b = strconv.AppendInt(b, int64(m.ContainerID), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(m.HostID), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(m.Size), 10)
		b = append(b, '\n')
	}
	return string(b)
}
