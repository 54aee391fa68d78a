// Package encryption encrypts Skiff's secrets before they reach the
// database, with AES-256-GCM. It is on by default: the server loads (or on
// first start creates) a key file and passes every Secret value through a
// Transformer on its way to and from storage.
//
// # Key file
//
// The key file is JSON, readable only by its owner (mode 0600), and lives
// at DATA_DIR/encryption.json:
//
//	{"keys":[{"name":"key1","secret":"<32 random bytes, base64>"}]}
//
// The first key encrypts every new write. Every key in the list can
// decrypt. Key names must be unique, non-empty and free of ':' because the
// name is written into each stored value.
//
// # Stored format
//
// An encrypted value is
//
//	k8s:enc:aesgcm:v1:<key name>:<12-byte nonce><ciphertext and GCM tag>
//
// the same layout the Kubernetes API server uses for its aesgcm provider.
// The storage key of the value (its etcd key) is bound to the ciphertext
// as GCM additional data, so a value copied under another key does not
// decrypt. Nonces are random for each write.
//
// A stored value without the "k8s:enc:" prefix is taken to be plaintext
// written before encryption was turned on; it is returned unchanged and
// marked stale so the next write encrypts it.
//
// # Rotating the key
//
// Rotation is done by editing the key file; the server only ever writes it
// once, when it creates it.
//
//  1. Generate 32 random bytes and base64-encode them, for example with
//     `head -c 32 /dev/urandom | base64`.
//  2. Add a new entry with a new name at the top of the "keys" list. Keep
//     the current key as the second entry: existing values still need it.
//  3. Restart the server (every server, if there are several). New and
//     updated secrets are now encrypted with the new key; old ones still
//     decrypt with the second key and are reported as stale.
//  4. Rewrite every secret so it is re-encrypted with the new key:
//     `kubectl get secrets -A -o json | kubectl replace -f -` (the API
//     server rewrites a stale value even when the replace changes nothing).
//  5. Remove the old key from the file and restart again. From here on a
//     value still encrypted with the removed key fails to decrypt with an
//     error that names the missing key, so do not skip step 4.
//
// Back up the key file together with the database: a database backup is
// useless without the keys its secrets were encrypted with.
package encryption
