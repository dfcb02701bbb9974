package store_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// BenchmarkMigrateToEtcd copies a file of 2,000 runs (2 KiB documents, with
// their three index entries) into an embedded three-member etcd at the
// default max_txn_ops, verification included; keys/s is what an operator
// waits for.
func BenchmarkMigrateToEtcd(b *testing.B) {
	src, err := store.Open(filepath.Join(b.TempDir(), store.FileName), store.Options{NoSync: true})
	require.NoError(b, err)
	defer src.Close()
	doc := make([]byte, 2048)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(b, src.Update(func(tx *store.Tx) error {
		for i := range 2000 {
			if err := tx.PutRun(store.RunIndex{ID: fmt.Sprintf("run_%05d", i), DeploymentID: "depl_1", CreatedAt: base.Add(time.Duration(i) * time.Second),
				Scheduled: true, ScheduledAt: base.Add(time.Duration(i) * time.Minute)}, doc); err != nil {
				return err
			}
		}
		return nil
	}))
	c := storetest.Shared(b)
	b.ResetTimer()
	keys := 0
	for range b.N {
		dst, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints(), Prefix: storetest.Prefix(b)})
		require.NoError(b, err)
		counts, err := store.Migrate(src, dst, store.MigrateOptions{})
		require.NoError(b, err)
		for _, ns := range counts {
			keys += ns.Keys
		}
		require.NoError(b, dst.Close())
	}
	b.ReportMetric(float64(keys)/b.Elapsed().Seconds(), "keys/s")
}
