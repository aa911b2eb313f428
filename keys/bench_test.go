package keys

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pursuance/pursuance/identity"
)

// BenchmarkRotation seals one new generation's seed to every member of a
// role of 10, 100 and 1,000 (what a rotation or removal costs its author),
// beside the same number of classical HPKE seals (DHKEM X25519) in the
// same run: the price of post-quantum sealing. It reports the rotation
// time and the bytes of seed boxes a key-update event would carry.
func BenchmarkRotation(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			rnd := newDetRand(byte(n))
			type member struct {
				id  identity.PublicKey
				kem identity.KEMPublicKey
				x   hpke.PublicKey
			}
			ms := make([]member, n)
			for i := range ms {
				sk, err := identity.NewSigningKey(rnd)
				if err != nil {
					b.Fatal(err)
				}
				kk, err := identity.NewKEMPrivateKey(rnd)
				if err != nil {
					b.Fatal(err)
				}
				xk, err := ecdh.X25519().GenerateKey(rnd)
				if err != nil {
					b.Fatal(err)
				}
				xp, err := hpke.NewDHKEMPublicKey(xk.PublicKey())
				if err != nil {
					b.Fatal(err)
				}
				ms[i] = member{sk.Public(), kk.Public(), xp}
			}
			k := testKey(b, "editor", 2, 1)
			var sealT, classicT time.Duration
			size := 0
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				size = 0
				for _, m := range ms {
					box, err := SealSeed(k, m.id, m.kem)
					if err != nil {
						b.Fatal(err)
					}
					size += len(box)
				}
				sealT += time.Since(start)
				b.StopTimer()
				start = time.Now()
				for _, m := range ms {
					if _, err := hpke.Seal(m.x, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), seedSealInfo(k, m.id), k.Seed[:]); err != nil {
						b.Fatal(err)
					}
				}
				classicT += time.Since(start)
				b.StartTimer()
			}
			b.ReportMetric(sealT.Seconds()*1000/float64(b.N), "ms/rotation")
			b.ReportMetric(float64(size), "box-bytes")
			b.ReportMetric(sealT.Seconds()/classicT.Seconds(), "pq/classical")
		})
	}
}

// BenchmarkEnvelope seals encoded events of typical and large sizes into
// envelopes, beside the bare XChaCha20-Poly1305 seal of the same bytes
// with no padding (the cipher's own speed) in the same run. MB/s counts
// plaintext bytes.
func BenchmarkEnvelope(b *testing.B) {
	for _, n := range []int{500, 4000, 60 << 10, 500 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", n), func(b *testing.B) {
			x, err := NewEnvelopes(testKey(b, "", 1, 1))
			if err != nil {
				b.Fatal(err)
			}
			raw, err := chacha20poly1305.NewX(make([]byte, 32))
			if err != nil {
				b.Fatal(err)
			}
			pt := make([]byte, n)
			nonce := make([]byte, nonceSize)
			rnd := newDetRand(9)
			var sealT, rawT time.Duration
			b.SetBytes(int64(n))
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if _, err := x.Seal(pt, rnd); err != nil {
					b.Fatal(err)
				}
				sealT += time.Since(start)
				start = time.Now()
				raw.Seal(nil, nonce, pt, nil)
				rawT += time.Since(start)
			}
			b.ReportMetric(float64(n)*float64(b.N)/sealT.Seconds()/1e6, "envelope-MB/s")
			b.ReportMetric(float64(n)*float64(b.N)/rawT.Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(sealT.Seconds()/rawT.Seconds(), "envelope/raw")
		})
	}
}
