// The S3 module is filled by a later issue; see README "Status".
