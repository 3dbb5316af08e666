package promote

// SetBeforeCheck installs a hook that runs between moving an env tag and
// checking it (tests race a second update there).
func (d *Deps) SetBeforeCheck(f func()) { d.beforeCheck = f }
