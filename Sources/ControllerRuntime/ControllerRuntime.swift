// The ControllerRuntime module is filled by a later issue; see README "Status".
