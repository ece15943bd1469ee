package store

// OpenReadTxs returns how many read transactions are open on the file.
func (s *Store) OpenReadTxs() int { return s.openReadTxs() }
