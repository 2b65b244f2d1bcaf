// Command verify checks the files written by `python -m protocol.vectors DIR` with Go's
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog packages, an implementation
// independent of ours.
//
// Usage: verify DIR
//
// It prints one line per checked file, "OK <file>" or "FAIL <file>: <reason>", and exits 1
// if any file failed. Checked: every checkpoint.N (note signature by verifier.key, body
// origin/size/root, and the witness cosignature of witness.key where present), every
// proofs/I.tlog-proof (parsed here, its checkpoint opened with note.Open, the inclusion of
// entries/I.bin checked with tlog.CheckRecord) and every consistency.M.N (tlog.CheckTree
// between the roots of checkpoint.M and checkpoint.N).
//
// Build in GOPATH mode: GO111MODULE=off GOPATH=/usr/share/gocode go build verify.go
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const proofHeader = "c2sp.org/tlog-proof@v1"

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

type witness struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: verify DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	verifier, err := note.NewVerifier(strings.TrimSpace(readFile(dir, "verifier.key")))
	if err != nil {
		fmt.Println("FAIL verifier.key:", err)
		os.Exit(1)
	}
	wit, err := parseWitnessKey(strings.TrimSpace(readFile(dir, "witness.key")))
	if err != nil {
		fmt.Println("FAIL witness.key:", err)
		os.Exit(1)
	}
	failed := false
	report := func(name string, err error) {
		if err != nil {
			failed = true
			fmt.Printf("FAIL %s: %v\n", name, err)
		} else {
			fmt.Printf("OK %s\n", name)
		}
	}

	checkpoints := map[int64]checkpoint{}
	for _, name := range glob(dir, "checkpoint.*") {
		cp, err := openCheckpoint([]byte(readFile(dir, name)), verifier, wit)
		if err == nil && name != fmt.Sprintf("checkpoint.%d", cp.size) {
			err = fmt.Errorf("holds size %d", cp.size)
		}
		if err == nil {
			checkpoints[cp.size] = cp
		}
		report(name, err)
	}
	for _, name := range glob(dir, filepath.Join("proofs", "*.tlog-proof")) {
		report(name, checkProof(dir, name, verifier, wit))
	}
	for _, name := range glob(dir, "consistency.*.*") {
		report(name, checkConsistency(dir, name, checkpoints))
	}
	if failed {
		os.Exit(1)
	}
}

func readFile(dir, name string) string {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		os.Exit(1)
	}
	return string(data)
}

func glob(dir, pattern string) []string {
	matches, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		panic(err)
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		rel, err := filepath.Rel(dir, m)
		if err != nil {
			panic(err)
		}
		names = append(names, rel)
	}
	sort.Strings(names)
	return names
}

// parseWitnessKey reads a C2SP cosignature/v1 verifier key: name+hex(key id)+base64(0x04||key).
// x/mod's note.NewVerifier knows only algorithm 0x01, so this is done by hand.
func parseWitnessKey(text string) (witness, error) {
	parts := strings.Split(text, "+")
	if len(parts) != 3 {
		return witness{}, errors.New("want name+keyid+key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		return witness{}, errors.New("not a cosignature/v1 Ed25519 key")
	}
	id, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil || len(parts[1]) != 8 {
		return witness{}, errors.New("bad key id")
	}
	sum := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if binary.BigEndian.Uint32(sum[:4]) != uint32(id) {
		return witness{}, errors.New("key id does not match the key")
	}
	return witness{parts[0], uint32(id), ed25519.PublicKey(raw[1:])}, nil
}

// openCheckpoint verifies the log's signature with note.Open, parses the body, and checks
// every cosignature by the witness among the note's unverified signatures.
func openCheckpoint(msg []byte, v note.Verifier, wit witness) (checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("note.Open: %w", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return checkpoint{}, errors.New("checkpoint body too short")
	}
	if lines[0] != v.Name() {
		return checkpoint{}, fmt.Errorf("origin %q is not the verifier's name", lines[0])
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("bad size %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return checkpoint{}, fmt.Errorf("bad root: %w", err)
	}
	for _, sig := range n.UnverifiedSigs {
		if sig.Name != wit.name || sig.Hash != wit.hash {
			continue
		}
		if err := checkCosignature(n.Text, sig.Base64, wit); err != nil {
			return checkpoint{}, err
		}
	}
	return checkpoint{lines[0], size, root}, nil
}

func checkCosignature(body, b64 string, wit witness) error {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 4+8+ed25519.SignatureSize {
		return errors.New("malformed cosignature")
	}
	timestamp := binary.BigEndian.Uint64(raw[4:12])
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", timestamp, body)
	if !ed25519.Verify(wit.key, []byte(msg), raw[12:]) {
		return errors.New("cosignature does not verify")
	}
	return nil
}

func checkProof(dir, name string, v note.Verifier, wit witness) error {
	text := readFile(dir, name)
	head, rest, found := strings.Cut(text, "\n\n")
	if !found {
		return errors.New("no blank line before the checkpoint")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != proofHeader {
		return errors.New("wrong header line")
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return errors.New("no index line")
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[0], "index "), 10, 64)
	if err != nil || index < 0 {
		return errors.New("bad index")
	}
	var proof tlog.RecordProof
	for _, line := range lines[1:] {
		h, err := tlog.ParseHash(line)
		if err != nil {
			return fmt.Errorf("bad proof hash: %w", err)
		}
		proof = append(proof, h)
	}
	cp, err := openCheckpoint([]byte(rest), v, wit)
	if err != nil {
		return err
	}
	entryName := filepath.Join("entries", fmt.Sprintf("%d.bin", index))
	if filepath.Base(name) != fmt.Sprintf("%d.tlog-proof", index) {
		return fmt.Errorf("proves index %d", index)
	}
	entry := readFile(dir, entryName)
	if index >= cp.size {
		return fmt.Errorf("index %d not below size %d", index, cp.size)
	}
	if err := tlog.CheckRecord(proof, cp.size, cp.root, index, tlog.RecordHash([]byte(entry))); err != nil {
		return fmt.Errorf("tlog.CheckRecord: %w", err)
	}
	return nil
}

func checkConsistency(dir, name string, checkpoints map[int64]checkpoint) error {
	parts := strings.Split(filepath.Base(name), ".")
	if len(parts) != 3 {
		return errors.New("name is not consistency.M.N")
	}
	oldSize, err1 := strconv.ParseInt(parts[1], 10, 64)
	newSize, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return errors.New("name is not consistency.M.N")
	}
	oldCp, ok1 := checkpoints[oldSize]
	newCp, ok2 := checkpoints[newSize]
	if !ok1 || !ok2 {
		return errors.New("no valid checkpoint for one of the sizes")
	}
	var proof tlog.TreeProof
	for _, line := range strings.Split(strings.TrimSuffix(readFile(dir, name), "\n"), "\n") {
		if line == "" {
			continue
		}
		h, err := tlog.ParseHash(line)
		if err != nil {
			return fmt.Errorf("bad proof hash: %w", err)
		}
		proof = append(proof, h)
	}
	if !bytes.HasSuffix([]byte(readFile(dir, name)), []byte("\n")) {
		return errors.New("missing final newline")
	}
	if err := tlog.CheckTree(proof, newCp.size, newCp.root, oldCp.size, oldCp.root); err != nil {
		return fmt.Errorf("tlog.CheckTree: %w", err)
	}
	return nil
}
