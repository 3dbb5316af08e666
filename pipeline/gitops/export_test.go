package gitops

// SetBeforePush installs a hook that runs right before each push (tests use
// it to make the branch move under a running update).
func (r *Repo) SetBeforePush(f func()) { r.beforePush = f }
