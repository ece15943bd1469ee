package client

// SetWaitHook has r call f whenever a copy of a delivery starts waiting
// for another copy of the same record to be handled. Set it before r
// serves.
func SetWaitHook(r *Receiver, f func(id string)) { r.waiting = f }
