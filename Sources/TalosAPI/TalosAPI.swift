// The TalosAPI module is filled by a later issue; see README "Status".
