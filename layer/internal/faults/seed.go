package faults

import (
	"crypto/sha512"
	"math/big"
	"unicode/utf8"
)

// SeededDraw gives the draws of one invocation when CHAOS_DECISION_SEED is set. It reproduces
// Python's random.Random(f"{seed}/{request_id}").random exactly (a str seed: its UTF-8 bytes
// followed by their SHA-512 as one big integer, fed to MT19937's init_by_array), so the local
// emulator's --seed replays the same decisions it did under the Python layer. The request id
// is read as Latin-1, as the Python layer decoded it.
func SeededDraw(seed string, requestID []byte) Draw {
	text := []byte(seed + "/")
	for _, b := range requestID {
		text = utf8.AppendRune(text, rune(b))
	}
	digest := sha512.Sum512(text)
	n := new(big.Int).SetBytes(append(text, digest[:]...))
	m := newMT(keyWords(n))
	return m.random
}

// keyWords is CPython's random_seed: the integer's 32-bit words, least significant first.
func keyWords(n *big.Int) []uint32 {
	bytes := n.Bytes() // big-endian
	words := make([]uint32, 0, len(bytes)/4+1)
	for end := len(bytes); end > 0; end -= 4 {
		var w uint32
		for i := max(0, end-4); i < end; i++ {
			w = w<<8 | uint32(bytes[i])
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		words = append(words, 0)
	}
	return words
}

const mtN, mtM = 624, 397

// mt is MT19937 as CPython's _randommodule.c implements it.
type mt struct {
	state [mtN]uint32
	index int
}

func newMT(key []uint32) *mt {
	m := &mt{}
	m.initGenrand(19650218)
	i, j := 1, 0
	for k := max(mtN, len(key)); k > 0; k-- {
		prev := m.state[i-1] ^ (m.state[i-1] >> 30)
		m.state[i] = (m.state[i] ^ (prev * 1664525)) + key[j] + uint32(j)
		i, j = i+1, j+1
		if i >= mtN {
			m.state[0], i = m.state[mtN-1], 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k := mtN - 1; k > 0; k-- {
		prev := m.state[i-1] ^ (m.state[i-1] >> 30)
		m.state[i] = (m.state[i] ^ (prev * 1566083941)) - uint32(i)
		i++
		if i >= mtN {
			m.state[0], i = m.state[mtN-1], 1
		}
	}
	m.state[0] = 0x80000000
	return m
}

func (m *mt) initGenrand(s uint32) {
	m.state[0] = s
	for i := 1; i < mtN; i++ {
		m.state[i] = 1812433253*(m.state[i-1]^(m.state[i-1]>>30)) + uint32(i)
	}
	m.index = mtN
}

func (m *mt) next() uint32 {
	if m.index >= mtN {
		m.twist()
	}
	y := m.state[m.index]
	m.index++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	return y ^ (y >> 18)
}

func (m *mt) twist() {
	for k := 0; k < mtN; k++ {
		y := (m.state[k] & 0x80000000) | (m.state[(k+1)%mtN] & 0x7fffffff)
		v := m.state[(k+mtM)%mtN] ^ (y >> 1)
		if y&1 != 0 {
			v ^= 0x9908b0df
		}
		m.state[k] = v
	}
	m.index = 0
}

// random is CPython's random_random: 53 random bits from two draws.
func (m *mt) random() float64 {
	a, b := m.next()>>5, m.next()>>6
	return (float64(a)*67108864.0 + float64(b)) * (1.0 / 9007199254740992.0)
}
