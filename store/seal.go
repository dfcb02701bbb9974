package store

// The sealing recipient: the age recipient (a public key, safe to store)
// every new secret must be sealed to. In a cluster the nodes share the
// sealed secrets but each loads its identity from its own file, so after a
// `keys rotate` on one node the others would go on sealing to the retired
// identity, which the rotating node no longer holds. The rotation writes the
// new recipient here in the transaction that re-seals the tokens; a node
// whose primary identity differs refuses to seal until it has the new one.
// The store only keeps the string; the rule is the daemon's.

var keySealRecipient = []byte("seal_recipient")

// SealRecipient is the recorded recipient, "" when none is.
func (tx *Tx) SealRecipient() string {
	return string(tx.bucket(bucketMeta).Get(keySealRecipient))
}

// SetSealRecipient records the recipient.
func (tx *Tx) SetSealRecipient(recipient string) error {
	return tx.bucket(bucketMeta).Put(keySealRecipient, []byte(recipient))
}
