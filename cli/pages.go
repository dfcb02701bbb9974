package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// listing is the items of one or more list pages. Next is the cursor after
// the last item shown (nil when the listing was read to its end), so --json
// output can be resumed with the API's own paging.
type listing struct {
	Data     []json.RawMessage `json:"data"`
	NextPage *string           `json:"next_page"`
}

// collectPages reads a list endpoint, resending the same query plus
// page=<next_page> until next_page is null or limit items were read (limit
// 0 reads everything). Page sizes are chosen so a page is never cut short:
// the returned cursor then continues exactly after the last item.
func collectPages(ctx context.Context, c *apiClient, path string, query url.Values, limit, maxPageSize int) (listing, error) {
	var out listing
	for {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		pageSize := maxPageSize
		if limit > 0 && limit-len(out.Data) < pageSize {
			pageSize = limit - len(out.Data)
		}
		q.Set("limit", strconv.Itoa(pageSize))
		if out.NextPage != nil {
			q.Set("page", *out.NextPage)
		}
		data, err := c.get(ctx, path, q)
		if err != nil {
			return listing{}, err
		}
		var page listPage
		if err := decodeJSON(data, "a list page of "+path, &page); err != nil {
			return listing{}, err
		}
		out.Data = append(out.Data, page.Data...)
		out.NextPage = page.NextPage
		if out.NextPage == nil || (limit > 0 && len(out.Data) >= limit) {
			if out.Data == nil {
				out.Data = []json.RawMessage{}
			}
			return out, nil
		}
		if len(page.Data) == 0 {
			// A cursor with nothing behind it would loop forever.
			return listing{}, fmt.Errorf("%s returned an empty page with a next_page cursor", path)
		}
	}
}

// printListingJSON prints the collected pages as one list object.
func printListingJSON(w io.Writer, l listing) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode listing: %w", err)
	}
	return printJSON(w, data)
}

// decodeItems decodes each raw item of a listing.
func decodeItems[T any](l listing, what string) ([]T, error) {
	items := make([]T, 0, len(l.Data))
	for i, raw := range l.Data {
		var item T
		if err := decodeJSON(raw, fmt.Sprintf("%s #%d", what, i+1), &item); err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	return items, nil
}

// checkLimit validates a --limit flag value.
func checkLimit(limit int) error {
	if limit < 0 {
		return fmt.Errorf("--limit: must be 0 (no limit) or a positive number, got %d", limit)
	}
	return nil
}
