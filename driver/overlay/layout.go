package overlay

import (
	"encoding/base32"
	"fmt"
	"io"
	"path"
	"strings"
)

// Names inside the home and inside a layer directory.
const (
	linkDir         = "l"
	tempDirsDir     = "tempdirs"
	stagingDir      = "staging"
	mountProgFile   = ".has-mount-program"
	backingFsDev    = "backingFsBlockDev"
	diffName        = "diff"
	workName        = "work"
	mergedName      = "merged"
	emptyName       = "empty"
	linkFile        = "link"
	lowerFile       = "lower"
	lowerLayersFile = "lower-layers"

	linkLen  = 26  // characters of a link name
	maxDepth = 500 // the kernel's OVL_MAX_STACK
)

// reservedNames are entries of the home that are not layers.
var reservedNames = map[string]bool{
	linkDir: true, tempDirsDir: true, stagingDir: true, mountProgFile: true, backingFsDev: true,
}

// newLinkName returns the base32 (A-Z2-7) encoding of 17 bytes of r,
// cut to 26 characters.
func newLinkName(r io.Reader) (string, error) {
	var b [17]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generating a link name: %w", err)
	}
	return base32.StdEncoding.EncodeToString(b[:])[:linkLen], nil
}

// validLinkName reports whether s can be an entry of l/: one path
// component (older tools wrote other lengths, so only that is required).
func validLinkName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/:\x00\n")
}

// validID reports whether id can name a layer directory.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/:\x00") && !reservedNames[id]
}

// linkTarget is the target of l/<link> for layer id.
func linkTarget(id string) string { return "../" + id + "/" + diffName }

// idFromLinkTarget returns the layer ID a l/ symlink target names
// ("../<id>/diff" or an absolute ".../<id>/diff").
func idFromLinkTarget(target string) (string, error) {
	t := path.Clean(target)
	if path.Base(t) != diffName {
		return "", fmt.Errorf("l/ link target %q does not end in /diff: %w", target, ErrBadLayout)
	}
	id := path.Base(path.Dir(t))
	if !validID(id) {
		return "", fmt.Errorf("l/ link target %q: %w", target, ErrBadLayout)
	}
	return id, nil
}

// parseLowerLayers parses a lower-layers file: IDs joined by ':'. An
// empty file means no lowers.
func parseLowerLayers(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	ids := strings.Split(s, ":")
	for _, id := range ids {
		if !validID(id) {
			return nil, fmt.Errorf("lower-layers entry %q: %w", id, ErrBadLayout)
		}
	}
	return ids, nil
}

// parseLower parses a lower file ("l/<link>" joined by ':') into link
// names.
func parseLower(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var links []string
	for _, e := range strings.Split(s, ":") {
		name, ok := strings.CutPrefix(e, linkDir+"/")
		if !ok || !validLinkName(name) {
			return nil, fmt.Errorf("lower entry %q: %w", e, ErrBadLayout)
		}
		links = append(links, name)
	}
	return links, nil
}

// entry is one item of a new layer directory.
type entry struct {
	Name    string // relative to H/<id>
	Dir     bool   // a directory with Mode; else a file with Content
	Mode    uint32
	Content string
}

// layoutInput is what a new layer's directory depends on.
type layoutInput struct {
	Link string // the new layer's link name
	// Parent is the parent's ID, "" for a base layer; ParentLink, its link
	// name; ParentLowers, the parent's lower IDs and ParentLowerLinks the
	// parent's lower file entries (link names), both nearest first.
	Parent           string
	ParentLink       string
	ParentLowers     []string
	ParentLowerLinks []string
}

// planLayout lists what Create makes inside H/<id> after diff/ (whose mode
// depends on the parent's diff): work, merged, link, then empty for a base
// layer or lower and lower-layers for a child, in creation order.
func planLayout(in layoutInput) []entry {
	out := []entry{
		{Name: linkFile, Mode: 0o644, Content: in.Link},
		{Name: workName, Dir: true, Mode: 0o700},
		{Name: mergedName, Dir: true, Mode: 0o700},
	}
	if in.Parent == "" {
		return append(out, entry{Name: emptyName, Dir: true, Mode: 0o700})
	}
	lower := make([]string, 0, len(in.ParentLowerLinks)+1)
	lower = append(lower, linkDir+"/"+in.ParentLink)
	for _, l := range in.ParentLowerLinks {
		lower = append(lower, linkDir+"/"+l)
	}
	ids := append([]string{in.Parent}, in.ParentLowers...)
	return append(out,
		entry{Name: lowerFile, Mode: 0o644, Content: strings.Join(lower, ":")},
		entry{Name: lowerLayersFile, Mode: 0o644, Content: strings.Join(ids, ":")})
}
