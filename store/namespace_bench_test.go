package store

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkFireUnderEventLoad measures what sharing the file costs the fire
// path: one op is one scheduled run record committed through Batch (fsync
// on), while harness sessions append events through the local namespace as
// fast as they can, in the same file or in a file of their own, or not at
// all. It decided "same file" for the local namespace (see namespace.go).
func BenchmarkFireUnderEventLoad(b *testing.B) {
	for _, load := range []string{"no-load", "same-file", "own-file"} {
		b.Run(load, func(b *testing.B) {
			dir := b.TempDir()
			st, err := Open(filepath.Join(dir, "a.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			events := st
			if load == "own-file" {
				if events, err = Open(filepath.Join(dir, "b.db"), Options{}); err != nil {
					b.Fatal(err)
				}
				defer events.Close()
			}
			ns, err := events.Namespace(NamespaceLocal)
			if err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if load != "no-load" {
				// Four busy harnesses, each committing batches of 8 events
				// of 300 bytes (the event sink's shape under steady output).
				for h := range 4 {
					wg.Go(func() {
						ev := make([]byte, 300)
						for seq := uint64(0); ; {
							select {
							case <-stop:
								return
							default:
							}
							_ = ns.Update(func(tx *NamespaceTx) error {
								bk := tx.Bucket("events")
								for range 8 {
									seq++
									k := binary.BigEndian.AppendUint64([]byte(fmt.Sprintf("sesn_%d/", h)), seq)
									if err := bk.Put(k, ev); err != nil {
										return err
									}
								}
								return nil
							})
						}
					})
				}
			}
			doc := make([]byte, 400)
			at := time.Unix(1_800_000_000, 0)
			b.ResetTimer()
			for i := range b.N {
				err := st.Batch(func(tx *Tx) error {
					return tx.PutRun(RunIndex{ID: fmt.Sprintf("drun_%d", i), DeploymentID: "depl_a", CreatedAt: at,
						Scheduled: true, ScheduledAt: at.Add(time.Duration(i) * time.Minute)}, doc)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
		})
	}
}
