package server

// SetRecvTestHook has enter called as each message of the service's
// methods begins to be read, with the receive reservations then held.
func SetRecvTestHook(s *Server, enter func(held int64)) { s.recv.testEnter = enter }

// RecvWaiting is how many requests wait for room in the service's
// receive gate.
func RecvWaiting(s *Server) int64 { return s.recv.waiting.Load() }

// RecvHeld is how many reservations of the service's receive gate are
// held.
func RecvHeld(s *Server) int64 { return s.recv.held.Load() }
