// Package behaviors holds meshconform's behaviours, one file each, named for the ID
// (mtls_002.go is MTLS-002): each registers an e2e.Behavior value with what it needs, what
// it deploys and applies, and its probe table or its Run function, with the judge functions
// that are its own beside it. Judges several behaviours share sit in files named for what
// they read (istiod.go: istiod's logs; probes.go: kubelet probes; chain.go: certificate
// chains). shared.go holds the sources, targets and policies many behaviours use.
//
// Judge functions take what was read and say what is wrong with it (nil when nothing), so
// they are tested on real-shaped input without a cluster; functions that read the cluster
// take a kubernetes.Interface and a context. Adding a behaviour is adding one file here (and
// its row in docs/behaviors.md).
package behaviors
