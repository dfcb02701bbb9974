package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/store/storetest"
)

// BenchmarkFencedFires measures the fire path's transaction (fence, claim,
// intent, a 2 KiB deployment document) from 64 concurrent writers through
// group commit, on bbolt (fsync on) and on the shared three-member embedded
// etcd (fsync on), in one run so the ratio is of one machine's state. On
// etcd it also reports what a fire costs: range reads before the commit
// (gets/fire), Txns sent (txns/fire, refused ones included) and groups.
func BenchmarkFencedFires(b *testing.B) {
	doc := []byte(`{"id":"x","pad":"` + strings.Repeat("p", 2048) + `"}`)
	run := func(b *testing.B, st *Store, fence Fence) {
		const writers = 64
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					id := fmt.Sprintf("d%06d", i%1000)
					at := time.Unix(i, 0)
					runID := fmt.Sprintf("r%09d", i)
					err := st.Write(func(tx *Tx) error {
						if err := tx.RequireFence(fence); err != nil {
							return err
						}
						if err := tx.ClaimScheduledFire(id, at, runID); err != nil {
							return err
						}
						if err := tx.PutIntent(runID, doc[:200]); err != nil {
							return err
						}
						// The deployment document the fire moves on: 2 KiB.
						return tx.PutAPIKey(APIKey{ID: id, Name: string(doc)})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fires/s")
	}
	b.Run("bbolt", func(b *testing.B) {
		st, err := Open(filepath.Join(b.TempDir(), FileName), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		run(b, st, Fence{})
	})
	b.Run("etcd-3-members", func(b *testing.B) {
		c := storetest.Shared(b)
		st, err := OpenEtcd(EtcdOptions{Endpoints: c.Endpoints(), Prefix: storetest.Prefix(b)})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		cli := c.Client(b)
		resp, err := cli.Put(context.Background(), st.etcd.prefix+"leader", "me")
		if err != nil {
			b.Fatal(err)
		}
		run(b, st, Fence{Key: st.etcd.prefix + "leader", Rev: resp.Header.Revision})
		b.ReportMetric(float64(st.etcd.conflicts.Load())/float64(b.N), "conflicts/fire")
		b.ReportMetric(float64(st.etcd.gets.Load())/float64(b.N), "gets/fire")
		b.ReportMetric(float64(st.etcd.txns.Load())/float64(b.N), "txns/fire")
		b.ReportMetric(float64(st.group.commits.Load())/float64(b.N), "groups/fire")
	})
}
