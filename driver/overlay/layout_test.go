package overlay

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewLinkName(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"zeros", make([]byte, 17), "AAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"ones", bytes.Repeat([]byte{0xff}, 17), "77777777777777777777777777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newLinkName(bytes.NewReader(tc.in))
			if err != nil || got != tc.want {
				t.Errorf("newLinkName = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := newLinkName(bytes.NewReader(make([]byte, 16))); err == nil {
		t.Error("newLinkName with 16 bytes of randomness succeeded")
	}
	got, err := newLink()
	if err != nil || len(got) != linkLen || strings.Trim(got, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		t.Errorf("newLink = %q, %v", got, err)
	}
}

func TestPlanLayout(t *testing.T) {
	names := func(es []entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	content := func(es []entry, name string) string {
		for _, e := range es {
			if e.Name == name {
				return e.Content
			}
		}
		return "<absent>"
	}
	for _, tc := range []struct {
		name            string
		in              layoutInput
		wantNames       []string
		wantLower       string
		wantLowerLayers string
	}{
		{"base", layoutInput{Link: "AAA"}, []string{"link", "work", "merged", "empty"}, "<absent>", "<absent>"},
		{"child", layoutInput{Link: "CCC", Parent: "p", ParentLink: "PPP"},
			[]string{"link", "work", "merged", "lower", "lower-layers"}, "l/PPP", "p"},
		{"grandchild", layoutInput{Link: "GGG", Parent: "c", ParentLink: "CCC", ParentLowers: []string{"b"}, ParentLowerLinks: []string{"BBB"}},
			[]string{"link", "work", "merged", "lower", "lower-layers"}, "l/CCC:l/BBB", "c:b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := planLayout(tc.in)
			if got := names(es); !slices.Equal(got, tc.wantNames) {
				t.Errorf("entries %v, want %v", got, tc.wantNames)
			}
			if got := content(es, "link"); got != tc.in.Link {
				t.Errorf("link %q", got)
			}
			if got := content(es, lowerFile); got != tc.wantLower {
				t.Errorf("lower %q, want %q", got, tc.wantLower)
			}
			if got := content(es, lowerLayersFile); got != tc.wantLowerLayers {
				t.Errorf("lower-layers %q, want %q", got, tc.wantLowerLayers)
			}
			for _, e := range es {
				if e.Dir && e.Mode != 0o700 || !e.Dir && e.Mode != 0o644 {
					t.Errorf("%s: mode %o", e.Name, e.Mode)
				}
			}
		})
	}
}

func TestParseLowerFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lower   bool // parse as lower (else lower-layers)
		in      string
		want    []string
		wantErr bool
	}{
		{"empty layers", false, "", nil, false},
		{"layers", false, "a:b:c", []string{"a", "b", "c"}, false},
		{"layers newline", false, "a:b\n", []string{"a", "b"}, false},
		{"layers empty item", false, "a::b", nil, true},
		{"layers slash", false, "a:../b", nil, true},
		{"layers reserved", false, "a:l", nil, true},
		{"lower", true, "l/AAA:l/BBB", []string{"AAA", "BBB"}, false},
		{"lower empty", true, "", nil, false},
		{"lower no l/", true, "AAA", nil, true},
		{"lower dotdot", true, "l/..", nil, true},
		{"lower nested", true, "l/a/b", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := parseLowerLayers
			if tc.lower {
				parse = parseLower
			}
			got, err := parse(tc.in)
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadLayout) {
				t.Errorf("error %v does not wrap ErrBadLayout", err)
			}
		})
	}
}

func TestIDFromLinkTarget(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"../abc/diff", "abc"},
		{"/var/lib/containers/storage/overlay/abc/diff", "abc"},
		{"../abc/diff/", "abc"},
		{"../abc/work", ""},
		{"../l/diff", ""},
		{"diff", ""},
	} {
		got, err := idFromLinkTarget(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("idFromLinkTarget(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if linkTarget("abc") != "../abc/diff" {
		t.Errorf("linkTarget = %q", linkTarget("abc"))
	}
}
