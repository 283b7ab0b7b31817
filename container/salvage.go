package container

import (
	"context"

	"github.com/stowage/stowage/internal/table"
)

// VerifyFiles decodes containers.json and volatile-containers.json under
// containers.lock without loading them; it returns the decode errors of
// those that do not decode, by path.
func (s *Store) VerifyFiles(ctx context.Context) (map[string]error, error) { return s.t.Verify(ctx) }

// SalvageFiles replaces every location file that does not decode by the
// records that still do, keeping the original (see table.Salvage).
func (s *Store) SalvageFiles(ctx context.Context) ([]table.Salvaged, error) {
	return s.t.Salvage(ctx)
}
