// The operator's API includes the pipeline's and the resolved resources' types (a transfer,
// a stored backup, a failure): whoever imports the operator sees them too.
@_exported import BackupResolution
@_exported import SnapshotPipeline
