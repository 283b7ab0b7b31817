package image

import (
	"context"

	"github.com/stowage/stowage/internal/table"
)

// VerifyFiles decodes images.json under images.lock without loading it;
// it returns the decode error by path if it does not decode.
func (s *Store) VerifyFiles(ctx context.Context) (map[string]error, error) { return s.t.Verify(ctx) }

// SalvageFiles replaces images.json by the records that still decode if
// it does not decode, keeping the original (see table.Salvage).
func (s *Store) SalvageFiles(ctx context.Context) ([]table.Salvaged, error) {
	return s.t.Salvage(ctx)
}
