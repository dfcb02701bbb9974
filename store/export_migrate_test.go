package store

// SetSchemaVersionForTest writes another schema version into the meta, as a
// newer binary would have.
func SetSchemaVersionForTest(s *Store, v uint64) error {
	return s.eng.update(func(tx kvTx) error { return tx.Bucket(bucketMeta.name).Put(keySchemaVersion, u64(v)) })
}
