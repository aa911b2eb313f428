package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/profile"
)

// maxRecordsAnswer bounds the JSON answer of a directory query or a
// lookup by pursuance: MaxDirectoryResults records in base64, and room.
const maxRecordsAnswer = MaxDirectoryResults*(profile.MaxRecordSize*4/3+8) + 1<<10

// PutProfile gives the relay a signed profile record (a profile or its
// withdrawal). It reports whether the relay stored it (false: it held it
// already).
func (c *Client) PutProfile(ctx context.Context, record []byte) (bool, error) {
	rec, err := profile.Parse(record)
	if err != nil {
		return false, err
	}
	resp, err := c.call(ctx, http.MethodPut, "/v1/profiles/"+ProfileKeyHex(rec.Key), record)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var res struct {
		Stored bool `json:"stored"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&res); err != nil {
		return false, fmt.Errorf("relay: profile answer: %w", err)
	}
	return res.Stored, nil
}

// Profile returns the record the relay holds under a profile key, verified
// (its signature, and that it is the key's).
func (c *Client) Profile(ctx context.Context, key identity.PublicKey) (*profile.Record, error) {
	resp, err := c.call(ctx, http.MethodGet, "/v1/profiles/"+ProfileKeyHex(key), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, profile.MaxRecordSize+1))
	if err != nil {
		return nil, err
	}
	rec, err := profile.Parse(b)
	if err != nil {
		return nil, err
	}
	if rec.Key != key {
		return nil, fmt.Errorf("%w: the relay answered another key's record", profile.ErrBadRecord)
	}
	return rec, nil
}

// ProfilesOf returns the records the relay holds that claim pursuance p:
// each verified, those that do not verify dropped (bad counts them).
func (c *Client) ProfilesOf(ctx context.Context, p event.ID) (recs []*profile.Record, bad int, err error) {
	recs, bad, err = c.records(ctx, c.front()+"/v1/profiles?pursuance="+p.String(), MaxClaimResults)
	if err != nil {
		return nil, 0, err
	}
	out := recs[:0]
	for _, r := range recs {
		if r.Pursuance == p {
			out = append(out, r)
		} else {
			bad++
		}
	}
	return out, bad, nil
}

// Directory queries the relay's directory for profiles whose words begin
// with every word of query; limit 0 is the relay's default. Every record
// is verified; those that do not verify, and withdrawals, are dropped
// (bad counts them).
func (c *Client) Directory(ctx context.Context, query string, limit int) (recs []*profile.Record, bad int, err error) {
	if _, err := ParseQuery(query); err != nil {
		return nil, 0, err
	}
	u := c.front() + "/v1/directory?q=" + url.QueryEscape(query)
	if limit > 0 {
		u += "&limit=" + strconv.Itoa(min(limit, MaxDirectoryResults))
	}
	recs, bad, err = c.records(ctx, u, MaxDirectoryResults)
	if err != nil {
		return nil, 0, err
	}
	out := recs[:0]
	for _, r := range recs {
		if r.Withdrawn {
			bad++
			continue
		}
		out = append(out, r)
	}
	return out, bad, nil
}

func (c *Client) records(ctx context.Context, u string, most int) ([]*profile.Record, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return nil, 0, err
	}
	var res Records
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRecordsAnswer)).Decode(&res); err != nil {
		return nil, 0, fmt.Errorf("relay: directory answer: %w", err)
	}
	if len(res.Records) > most {
		return nil, 0, fmt.Errorf("%w: %d records, more than %d", ErrFrame, len(res.Records), most)
	}
	var out []*profile.Record
	bad := 0
	for _, b := range res.Records {
		r, err := profile.Parse(b)
		if err != nil {
			bad++
			continue
		}
		out = append(out, r)
	}
	return out, bad, nil
}

// Knock sends a sealed join request (profile.Knock.Seal) to the profile
// whose key is key, with a proof of work of the bits the relay asks
// (Info.KnockWork; profile.Stamp).
func (c *Client) Knock(ctx context.Context, key identity.PublicKey, stamp, box []byte) error {
	if len(stamp) != profile.StampSize || len(box) != profile.KnockSize {
		return fmt.Errorf("relay: a knock is a %d-byte stamp and a %d-byte box", profile.StampSize, profile.KnockSize)
	}
	body := append(append(make([]byte, 0, len(stamp)+len(box)), stamp...), box...)
	resp, err := c.call(ctx, http.MethodPost, "/v1/knocks/"+ProfileKeyHex(key), body)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
