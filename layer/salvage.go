package layer

import (
	"context"
	"maps"

	"github.com/stowage/stowage/internal/table"
)

// VerifyFiles decodes layers.json (and the other location files, and
// mountpoints.json) under their locks without loading them, returning the
// errors of the files that do not decode, by path.
func (s *Store) VerifyFiles(ctx context.Context) (map[string]error, error) {
	out, err := s.t.Verify(ctx)
	if err != nil || s.mounts == nil {
		return out, err
	}
	m, err := s.mounts.Verify(ctx)
	maps.Copy(out, m)
	return out, err
}

// SalvageFiles replaces every location file that does not decode by the
// records that still do, keeping the original (see table.Salvage).
func (s *Store) SalvageFiles(ctx context.Context) ([]table.Salvaged, error) {
	out, err := s.t.Salvage(ctx)
	if err != nil || s.mounts == nil {
		return out, err
	}
	m, err := s.mounts.Salvage(ctx)
	return append(out, m...), err
}
