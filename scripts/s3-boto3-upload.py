#!/usr/bin/env python3
"""boto3's managed upload (upload_fileobj) of SIZE_MIB MiB from a file, timed, against the
S3_TEST_<$S3_TEST_SERVER, default AUTH>_* server: the baseline of scripts/benchmark-s3 and scripts/benchmark-pipeline.
Usage: s3-boto3-upload.py FILE [PART_MIB THREADS] (default 16 MiB parts, 4 threads)"""
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

path = sys.argv[1]
size_mib = os.path.getsize(path) // (1024 * 1024)
server = os.environ.get("S3_TEST_SERVER", "AUTH")
s3 = boto3.client("s3", endpoint_url=os.environ[f"S3_TEST_{server}_ENDPOINT"], region_name=os.environ.get("S3_TEST_REGION", "us-east-1"),
                  aws_access_key_id=os.environ[f"S3_TEST_{server}_ACCESS_KEY_ID"],
                  aws_secret_access_key=os.environ[f"S3_TEST_{server}_SECRET_ACCESS_KEY"],
                  config=Config(s3={"addressing_style": "path"}))
part_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 16
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
config = TransferConfig(multipart_chunksize=part_mib * 1024 * 1024, max_concurrency=threads)
start = time.monotonic()
with open(path, "rb") as handle:
    s3.upload_fileobj(handle, os.environ.get("S3_TEST_BUCKET", "etcd-backups"), f"boto3-{size_mib}-mib.db", Config=config)
elapsed = time.monotonic() - start
print(f"boto3 upload_fileobj ({server}): {size_mib} MiB in {elapsed:.2f} s = {size_mib / elapsed:.1f} MiB/s ({part_mib} MiB parts, {threads} threads)")
