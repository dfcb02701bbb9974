// Package crypto owns sandbox0d's secret sealing: the age X25519 identity file
// (where it lives, how it is created, loaded and rotated) and the sealed format
// that write-only secrets such as a github_repository authorization_token take
// before they reach bbolt.
//
// It does not touch the database. The store and daemon decide which values are
// secrets, run the re-seal transaction during rotation and refuse to start when
// sealed data cannot be opened; this package hands them the primitives
// (Keyring, Rotate, CheckSealedOpen, StartupKeyring) and the typed errors that
// make those decisions easy.
//
// # Sealed format
//
// A sealed secret is a binary (not armored) age v1 file encrypted to the
// keyring's primary X25519 recipient, so it always begins with the line
// "age-encryption.org/v1\n" (see IsSealed). The age plaintext is a small
// envelope that binds the secret to its owner:
//
//	offset  size     field
//	0       6        magic "s0dsec"
//	6       1        envelope version, currently 1
//	7       uvarint  length of the deployment id in bytes (1..256)
//	...     n        deployment id (UTF-8)
//	...     uvarint  resource position (0..MaxPosition)
//	...     rest     the secret itself (0..MaxSecretSize bytes)
//
// Open authenticates the age payload, decodes the envelope and compares its
// owner with the one the caller expects, so a ciphertext copied onto another
// deployment or resource position fails with *OwnerMismatchError instead of
// handing the token to the wrong place. A sealed secret costs about 200 bytes
// plus the secret.
//
// # Secrets never leak through errors
//
// No error, log line or panic produced here contains plaintext or identity
// key material: parse errors name the file and line number only, and errors
// from age (which may quote input bytes) are replaced with fixed messages.
// The Secret type carries plaintext through the rest of the program and
// prints as "[redacted]" everywhere.
package crypto
