package tor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// cookieSize is the size of tor's authentication cookie.
const cookieSize = 32

// The keys of the SAFECOOKIE exchange (control-spec §3.24).
const (
	safeCookieServerKey = "Tor safe cookie authentication server-to-controller hash"
	safeCookieClientKey = "Tor safe cookie authentication controller-to-server hash"
)

// ErrPasswordAuth is returned when a control port accepts only a
// password, which Pursuance does not handle.
var ErrPasswordAuth = errors.New("tor: the control port wants a password; Pursuance authenticates with tor's cookie: set `CookieAuthentication 1` in that tor's torrc (see docs/tor.md)")

// protocolInfo is what PROTOCOLINFO tells before authentication.
type protocolInfo struct {
	methods    []string // NULL, COOKIE, SAFECOOKIE, HASHEDPASSWORD
	cookieFile string
	version    string
}

func (cc *controlConn) protocolInfo(ctx context.Context) (protocolInfo, error) {
	rep, err := cc.do(ctx, "PROTOCOLINFO 1")
	if err != nil {
		return protocolInfo{}, err
	}
	var pi protocolInfo
	for _, l := range rep.lines {
		word, rest, _ := strings.Cut(l.text, " ")
		switch word {
		case "AUTH":
			m, err := kv(rest)
			if err != nil {
				return protocolInfo{}, fmt.Errorf("tor: PROTOCOLINFO: %w", err)
			}
			if ms := m["METHODS"]; ms != "" {
				pi.methods = strings.Split(ms, ",")
			}
			pi.cookieFile = m["COOKIEFILE"]
		case "VERSION":
			m, err := kv(rest)
			if err != nil {
				return protocolInfo{}, fmt.Errorf("tor: PROTOCOLINFO: %w", err)
			}
			pi.version = m["Tor"]
		}
	}
	return pi, nil
}

func (pi protocolInfo) offers(method string) bool {
	for _, m := range pi.methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// authenticate asks the control port how to authenticate and does so:
// without credentials when tor asks none (NULL), else with the cookie,
// by SAFECOOKIE when offered (the cookie itself then never crosses the
// connection, so a process that is not tor learns nothing of it), else
// by COOKIE. cookieFile, when set, overrides the file tor names (Start
// knows where its tor writes it). rnd is the source of the nonce.
func (cc *controlConn) authenticate(ctx context.Context, cookieFile string, rnd io.Reader) (protocolInfo, error) {
	pi, err := cc.protocolInfo(ctx)
	if err != nil {
		return pi, err
	}
	if pi.offers("NULL") {
		_, err := cc.do(ctx, "AUTHENTICATE")
		return pi, err
	}
	if !pi.offers("SAFECOOKIE") && !pi.offers("COOKIE") {
		if pi.offers("HASHEDPASSWORD") {
			return pi, ErrPasswordAuth
		}
		return pi, fmt.Errorf("tor: the control port offers no authentication Pursuance knows (%s)", oneLine(strings.Join(pi.methods, ","), 80))
	}
	if cookieFile == "" {
		cookieFile = pi.cookieFile
	}
	cookie, err := readCookie(cookieFile)
	if err != nil {
		return pi, err
	}
	if !pi.offers("SAFECOOKIE") {
		_, err := cc.do(ctx, "AUTHENTICATE "+hex.EncodeToString(cookie))
		return pi, err
	}
	clientNonce := make([]byte, 32)
	if _, err := io.ReadFull(rnd, clientNonce); err != nil {
		return pi, err
	}
	rep, err := cc.do(ctx, "AUTHCHALLENGE SAFECOOKIE "+hex.EncodeToString(clientNonce))
	if err != nil {
		return pi, err
	}
	_, rest, _ := strings.Cut(rep.lines[len(rep.lines)-1].text, " ")
	m, err := kv(rest)
	if err != nil {
		return pi, fmt.Errorf("tor: AUTHCHALLENGE: %w", err)
	}
	serverHash, err1 := hex.DecodeString(m["SERVERHASH"])
	serverNonce, err2 := hex.DecodeString(m["SERVERNONCE"])
	if err1 != nil || err2 != nil || len(serverHash) != sha256.Size || len(serverNonce) != 32 {
		return pi, errors.New("tor: AUTHCHALLENGE: a malformed answer")
	}
	msg := append(append(append([]byte{}, cookie...), clientNonce...), serverNonce...)
	if !hmac.Equal(serverHash, mac(safeCookieServerKey, msg)) {
		// Whatever answers does not hold tor's cookie: not our tor.
		return pi, errors.New("tor: the control port does not know tor's cookie (SAFECOOKIE): it is not the tor that wrote " + cookieFile)
	}
	_, err = cc.do(ctx, "AUTHENTICATE "+hex.EncodeToString(mac(safeCookieClientKey, msg)))
	return pi, err
}

func mac(key string, msg []byte) []byte {
	h := hmac.New(sha256.New, []byte(key))
	h.Write(msg)
	return h.Sum(nil)
}

// readCookie reads tor's authentication cookie, which is exactly 32
// bytes: a file of another size is refused unread past that, so that a
// control port naming some other file learns nothing of it.
func readCookie(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("tor: the control port wants cookie authentication but names no cookie file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tor: the authentication cookie: %w (does this user have the right to control that tor? see docs/tor.md)", err)
	}
	defer f.Close()
	b := make([]byte, cookieSize+1)
	n, _ := io.ReadFull(f, b)
	if n != cookieSize {
		return nil, fmt.Errorf("tor: %s is not a tor authentication cookie (%d bytes, not %d)", path, n, cookieSize)
	}
	return b[:cookieSize], nil
}
