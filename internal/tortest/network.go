package tortest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The network's shape and clock. Onion services need enough distinct
// relays: a client's path to an introduction point is three hops plus the
// point, a rendezvous point is another relay, and a relay never uses
// itself; every relay is an HSDir, and the descriptor goes to several.
// Five relays, three of them authorities (so that the consensus survives
// one slow authority), leave every onion-service circuit its relays.
const (
	numAuthorities = 3
	numRelays      = 2

	// votingInterval is the authorities' consensus period once there is
	// a consensus; initialInterval before the first. Tor accepts periods
	// that divide a day, and needs the vote and distribution delays to
	// fit in half of one (at least two seconds each). A shorter period is
	// faster but leaves less room for a busy machine, and the onion
	// service time period is 24 of them (4 minutes here).
	votingInterval  = 10 * time.Second
	voteDelay       = 2 * time.Second
	distDelay       = 2 * time.Second
	initialInterval = 10 * time.Second
	initialDelay    = 2 * time.Second
	// firstVoteAfter is when, after the tors start, the authorities cast
	// their first vote. Authorities vote on a schedule fixed to the
	// clock, at once if they start late in a period: a vote in the first
	// second leaves out the relays whose descriptors have not arrived
	// yet, and the consensus that has them comes a whole votingInterval
	// later. Relays publish about a second after their start.
	firstVoteAfter = 3 * time.Second
	// intervalsValid is how many intervals a consensus stays valid
	// (V3AuthNIntervalsValid): a client tolerates a missed vote or two.
	intervalsValid = 3

	// networkTimeout bounds the start of a network, from the keys to
	// every directory serving a consensus with every relay flagged.
	networkTimeout = 2 * time.Minute
	// readyPoll is how often the directories are asked.
	readyPoll = 250 * time.Millisecond
	// nudgeEvery spaces the SIGHUPs that make a relay fetch the
	// consensus the authorities already serve.
	nudgeEvery = 2 * time.Second

	// envKeep, set to anything, keeps the shared network's directory
	// (keys, torrcs, logs) after the tests; it is kept anyway when a test
	// failed.
	envKeep = "PURSUANCE_TORTEST_KEEP"
)

// flagsNeeded are the consensus flags every relay must have before the
// network counts as up: usable at all (Running, Valid), as an entry guard
// (the authorities vote Guard for every relay, since in a new network none
// has the uptime for it) and as an onion service directory (HSDir, voted
// for every relay likewise).
var flagsNeeded = []string{"Running", "Valid", "Guard", "HSDir"}

// Network is a private Tor network on 127.0.0.1: directory authorities
// whose keys tor-gencert made for it, and relays. Every relay gets the
// Guard and HSDir flags, none is an exit: it carries onion services, and
// nothing can leave it. Its torrcs use testing-network timings, so that it
// publishes a consensus within seconds of its start.
//
// A Network is safe for concurrent use. Shared returns the one a test
// binary shares.
type Network struct {
	dir         string
	nodes       []*node
	clientTorrc []string
	upAfter     time.Duration

	mu     sync.Mutex
	closed bool
}

// node is one authority or relay of a Network.
type node struct {
	name        string
	authority   bool
	dir         string
	orPort      int
	dirPort     int
	fingerprint string // RSA identity, upper-case hex
	v3ident     string // authorities: the certificate's fingerprint
	proc        *process
	nudged      time.Time // last SIGHUP from waitUp
}

// UpAfter returns how long the network took from its start (making keys
// included) until every directory served a consensus listing every relay
// with the flags onion services need and all their microdescriptors.
func (n *Network) UpAfter() time.Duration { return n.upAfter }

// Dir returns the directory holding the network's nodes: one
// subdirectory (DataDirectory, torrc, notice.log) per authority (a1, …)
// and relay (r1, …).
func (n *Network) Dir() string { return n.dir }

// ClientTorrc returns the torrc lines a client or onion-service tor needs
// to use this network and nothing else: TestingTorNetwork 1 (which gives
// a client the short download delays of a testing network), a
// DirAuthority line for each of the network's authorities (on 127.0.0.1)
// and UseDefaultFallbackDirs 0. It leaves DataDirectory, SocksPort,
// ControlPort, logging and the tor's owner to the caller. The caller owns
// the returned slice.
func (n *Network) ClientTorrc() []string {
	return append([]string(nil), n.clientTorrc...)
}

// startNetwork builds and starts a network in dir, and returns once it is
// up or ctx ends. logf reports progress.
func startNetwork(ctx context.Context, dir string, logf func(format string, args ...any)) (*Network, error) {
	start := time.Now()
	if err := checkIsolated(); err != nil {
		return nil, err
	}
	_, gencert, err := binaries()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2 * (numAuthorities + numRelays))
	if err != nil {
		return nil, err
	}
	n := &Network{dir: dir}
	for i := range numAuthorities + numRelays {
		nd := &node{authority: i < numAuthorities, orPort: ports[2*i], dirPort: ports[2*i+1]}
		if nd.authority {
			nd.name = fmt.Sprintf("a%d", i+1)
		} else {
			nd.name = fmt.Sprintf("r%d", i-numAuthorities+1)
		}
		nd.dir = filepath.Join(dir, nd.name)
		if err := os.Mkdir(nd.dir, 0o700); err != nil {
			return nil, fmt.Errorf("tortest: %w", err)
		}
		n.nodes = append(n.nodes, nd)
	}

	// Keys: tor-gencert is slow (RSA 3072), so all at once.
	var wg sync.WaitGroup
	errs := make([]error, len(n.nodes))
	for i, nd := range n.nodes {
		wg.Go(func() {
			nd.fingerprint, errs[i] = makeRelayIdentity(nd.dir)
			if errs[i] == nil && nd.authority {
				nd.v3ident, errs[i] = makeAuthorityKeys(ctx, gencert, nd.dir, nd.dirPort)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	logf("tortest: keys for %d authorities and %d relays made in %v", numAuthorities, numRelays, time.Since(start).Round(time.Millisecond))

	var auths []string
	for _, nd := range n.nodes {
		if nd.authority {
			auths = append(auths, fmt.Sprintf("DirAuthority %s orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s",
				nd.name, nd.orPort, nd.v3ident, nd.dirPort, nd.fingerprint))
		}
	}
	n.clientTorrc = clientTorrc(auths)
	offset := votingOffset(time.Now())
	for _, nd := range n.nodes {
		nd.proc, err = startTor(nd.name, nd.dir, nodeTorrc(nd, auths, offset))
		if err != nil {
			n.close()
			return nil, err
		}
	}
	if err := n.waitUp(ctx, logf); err != nil {
		n.close()
		return nil, err
	}
	n.upAfter = time.Since(start)
	logf("tortest: network up in %v", n.upAfter.Round(time.Millisecond))
	return n, nil
}

// localTorrc is what every tor started here has besides the network: a
// DataDirectory, a log, and an owner.
func localTorrc(dataDir string) []string {
	return []string{
		"DataDirectory " + dataDir,
		// Exit when this test binary does, even if the kernel's kill
		// (Pdeathsig, the PID namespace) did not happen.
		"__OwningControllerProcess " + strconv.Itoa(os.Getpid()),
		"Log notice file " + filepath.Join(dataDir, noticeLog),
		"SafeLogging 0",
		"LogTimeGranularity 1",
	}
}

// nodeTorrc is the torrc of an authority or relay. offset shifts the
// authorities' voting schedule (see votingOffset).
func nodeTorrc(nd *node, auths []string, offset int) []string {
	lines := append(clientTorrc(auths), localTorrc(nd.dir)...)
	lines = append(lines,
		"Nickname "+nd.name,
		"SocksPort 0",
		fmt.Sprintf("ORPort 127.0.0.1:%d", nd.orPort),
		// A DirPort on every node lets waitUp ask each what it serves.
		fmt.Sprintf("DirPort 127.0.0.1:%d", nd.dirPort),
		"Address 127.0.0.1",
		// Publish at once: reachability self-tests need circuits, which
		// need the consensus this descriptor is for.
		"AssumeReachable 1",
		"ExitRelay 0",
		"ShutdownWaitLength 0",
		"ContactInfo "+nd.name+"@tortest.invalid",
	)
	if !nd.authority {
		return lines
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) + " seconds" }
	return append(lines,
		"AuthoritativeDirectory 1",
		"V3AuthoritativeDirectory 1",
		"TestingV3AuthInitialVotingInterval "+secs(initialInterval),
		"TestingV3AuthInitialVoteDelay "+secs(initialDelay),
		"TestingV3AuthInitialDistDelay "+secs(initialDelay),
		"V3AuthVotingInterval "+secs(votingInterval),
		"V3AuthVoteDelay "+secs(voteDelay),
		"V3AuthDistDelay "+secs(distDelay),
		"V3AuthNIntervalsValid "+strconv.Itoa(intervalsValid),
		"TestingV3AuthVotingStartOffset "+strconv.Itoa(offset)+" seconds",
		// A new relay has none of the uptime or bandwidth history that
		// earns Guard and HSDir: vote them for every relay.
		"TestingDirAuthVoteGuard *",
		"TestingDirAuthVoteHSDir *",
	)
}

// votingOffset returns the TestingV3AuthVotingStartOffset, in seconds,
// that makes the authorities' first period start firstVoteAfter plus the
// vote and distribution delays after now, so that they vote
// firstVoteAfter after now. Periods start at multiples of the interval
// from midnight UTC, plus the offset, and an authority's first is the next
// one to start.
func votingOffset(now time.Time) int {
	first := now.Add(firstVoteAfter + 2*initialDelay)
	secs := first.Unix()
	if first.Nanosecond() > 0 {
		secs++
	}
	return int(secs % int64(initialInterval/time.Second))
}

// clientTorrc is what Network.ClientTorrc returns.
func clientTorrc(auths []string) []string {
	lines := []string{"TestingTorNetwork 1"}
	lines = append(lines, auths...)
	return append(lines, "UseDefaultFallbackDirs 0")
}

// waitUp polls every node's DirPort until each serves a consensus that
// lists every node with flagsNeeded, and every microdescriptor it names.
// A client asks any relay for microdescriptors, and one that does not yet
// have them costs that client a retry ten seconds later.
func (n *Network) waitUp(ctx context.Context, logf func(string, ...any)) error {
	var last error
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	start := time.Now()
	prev := ""
	for {
		last = n.ready(ctx)
		if last == nil {
			return nil
		}
		if last.Error() != prev {
			prev = last.Error()
			logf("tortest: network at %v: %s", time.Since(start).Round(time.Millisecond), prev)
		}
		for _, nd := range n.nodes {
			if err := nd.proc.exited(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tortest: the network did not come up: %v (last check: %v)\n%s", ctx.Err(), last, n.logTails(logTailLines))
		case <-tick.C:
		}
	}
}

// ready returns nil when every node serves a complete consensus. Once
// the authorities do, a relay that does not yet is sent SIGHUP: tor then
// forgets its failed consensus downloads (404s, before there was one) and
// their backoff, and fetches at once.
func (n *Network) ready(ctx context.Context) error {
	authsReady := true
	for _, nd := range n.nodes {
		err := nd.serving(ctx, n.nodes)
		if err == nil {
			continue
		}
		if nd.authority {
			authsReady = false
		} else if authsReady {
			nd.nudge()
		}
		return fmt.Errorf("%s: %w", nd.name, err)
	}
	return nil
}

// serving returns nil when nd serves a consensus that lists every node
// of the network with flagsNeeded, and every microdescriptor it names.
func (nd *node) serving(ctx context.Context, nodes []*node) error {
	c, err := fetchConsensus(ctx, nd.dirPort)
	if err != nil {
		return err
	}
	if err := c.complete(nodes); err != nil {
		return err
	}
	return fetchMicrodescs(ctx, nd.dirPort, c.microdescs())
}

// nudge sends a relay SIGHUP, at most once every nudgeEvery.
func (nd *node) nudge() {
	if time.Since(nd.nudged) < nudgeEvery {
		return
	}
	nd.nudged = time.Now()
	_ = nd.proc.cmd.Process.Signal(syscall.SIGHUP)
}

// logTails returns the end of every node's log, for a failure.
func (n *Network) logTails(lines int) string {
	var b strings.Builder
	for _, nd := range n.nodes {
		if nd.proc == nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", nd.name, filepath.Join(nd.dir, noticeLog), nd.proc.logTail(lines))
	}
	return b.String()
}

// close stops every tor of the network. Clients started with StartClient
// stop with their tests.
func (n *Network) close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, nd := range n.nodes {
		if nd.proc != nil {
			wg.Go(nd.proc.stop)
		}
	}
	wg.Wait()
}

// freePorts returns count distinct free TCP ports on 127.0.0.1, found by
// listening on port 0. They are closed before tor binds them, which is
// safe here: nothing else runs in the namespace but this test binary.
func freePorts(count int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range count {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("tortest: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// shared is the network Shared starts once per test binary.
var shared struct {
	sync.Mutex
	done chan struct{} // closed once started or failed
	net  *Network
	err  error
	dir  string
}

// Shared starts the package's one network on first use, and returns it;
// later calls wait for it and reuse it. It skips t when Tor tests cannot
// run here, and fails t if the network does not come up within two
// minutes (it comes up in about ten seconds). Main stops it after the
// tests. Tests share it: none may stop its tors.
func Shared(t testing.TB) *Network {
	t.Helper()
	Skip(t)
	shared.Lock()
	if shared.done == nil {
		shared.done = make(chan struct{})
		go startShared()
	}
	done := shared.done
	shared.Unlock()
	<-done // startShared gives up after networkTimeout
	if shared.err != nil {
		t.Fatalf("the shared Tor network: %v", shared.err)
	}
	return shared.net
}

func startShared() {
	defer close(shared.done)
	dir, err := os.MkdirTemp("", "tortest-network-")
	if err != nil {
		shared.err = fmt.Errorf("tortest: %w", err)
		return
	}
	shared.dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), networkTimeout)
	defer cancel()
	logf := func(format string, args ...any) {
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}
	}
	shared.net, shared.err = startNetwork(ctx, dir, logf)
}

// closeShared stops the shared network, if any, and removes its directory
// unless it should be kept (envKeep, or a failed test run).
func closeShared(failed bool) {
	shared.Lock()
	done := shared.done
	shared.Unlock()
	if done == nil {
		return
	}
	<-done
	if shared.net != nil {
		shared.net.close()
	}
	if shared.dir == "" {
		return
	}
	if _, keep := os.LookupEnv(envKeep); keep || failed {
		fmt.Fprintf(os.Stderr, "tortest: the shared network's keys, torrcs and logs are in %s\n", shared.dir)
		return
	}
	os.RemoveAll(shared.dir)
}
