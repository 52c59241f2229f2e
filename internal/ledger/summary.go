package ledger

// Summary is what one read of the ledger says of its orders: how many are
// in each status, and the open one (not ended: accepted, processing or in
// doubt) that was accepted first. Metrics and `xnum orders stats` show it.
type Summary struct {
	Total    int
	ByStatus map[Status]int
	// OldestOpen is the open order accepted first; nil when none is open.
	OldestOpen *Order
}

// Summarize counts orders (as List returns them) by status and finds the
// oldest open one.
func Summarize(orders []*Order) Summary {
	s := Summary{Total: len(orders), ByStatus: map[Status]int{}}
	for _, o := range orders {
		s.ByStatus[o.Status]++
		if o.Status.Terminal() {
			continue
		}
		if s.OldestOpen == nil || o.CreatedAt.Before(s.OldestOpen.CreatedAt) ||
			o.CreatedAt.Equal(s.OldestOpen.CreatedAt) && o.OrderID < s.OldestOpen.OrderID {
			s.OldestOpen = o
		}
	}
	return s
}
