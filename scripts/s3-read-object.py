#!/usr/bin/env python3
"""Reads an object back with boto3 (an independent S3 client) and prints its size and SHA-256.
Usage: s3-read-object.py ENDPOINT BUCKET KEY [OUTPUT-FILE]; credentials from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, region from AWS_DEFAULT_REGION, CA bundle from AWS_CA_BUNDLE."""
import hashlib
import sys

import boto3
from botocore.config import Config


def main():
    endpoint, bucket, key = sys.argv[1:4]
    output = open(sys.argv[4], "wb") if len(sys.argv) > 4 else None
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
        if output:
            output.write(chunk)
    if output:
        output.close()
    print(size, digest.hexdigest())


if __name__ == "__main__":
    main()
