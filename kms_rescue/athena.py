"""The Athena query for a key's management history beyond CloudTrail's 90-day event history. Pure text.

CloudTrail's LookupEvents covers the last 90 days of management events per Region (CloudTrail User Guide, "Working
with CloudTrail event history"); older events are in the trail's S3 bucket, which Athena queries.
"""

from __future__ import annotations

from kms_rescue.policy.partitions import DEFAULT_PARTITION, is_region_code, partition_for_region

#: The key-management events the report reads.
KEY_EVENTS = ("CreateKey", "PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey")


def athena_query(
    *, key_arn: str | None, key_id: str | None, account: str | None, region: str,
    trail_bucket: str | None = None, table: str = "cloudtrail_logs",
) -> str:
    """Athena SQL for the key's management history beyond CloudTrail's 90-day event history: a table over the
    trail's S3 bucket, then the query. ``trail_bucket`` is the trail's bucket (a placeholder when unknown)."""
    bucket = trail_bucket or "TRAIL_BUCKET"
    acct = account or "ACCOUNT_ID"
    kid = key_id or "KEY_ID"
    partition = partition_for_region(region).id if is_region_code(region) else DEFAULT_PARTITION
    arn = key_arn or f"arn:{partition}:kms:{region}:{acct}:key/{kid}"
    names = ", ".join(f"'{n}'" for n in KEY_EVENTS)
    return (
        f"-- 1. A table over the trail's logs (once; see \"Querying AWS CloudTrail logs\" in the Athena guide).\n"
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n"
        f"  eventversion STRING,\n"
        f"  useridentity STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING,\n"
        f"    invokedby: STRING, accesskeyid: STRING, username: STRING,\n"
        f"    sessioncontext: STRUCT<attributes: STRUCT<mfaauthenticated: STRING, creationdate: STRING>,\n"
        f"      sessionissuer: STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING,\n"
        f"        username: STRING>>>,\n"
        f"  eventtime STRING, eventsource STRING, eventname STRING, awsregion STRING,\n"
        f"  sourceipaddress STRING, useragent STRING, errorcode STRING, errormessage STRING,\n"
        f"  requestparameters STRING, responseelements STRING, requestid STRING, eventid STRING,\n"
        f"  resources ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>,\n"
        f"  eventtype STRING, recipientaccountid STRING\n"
        f")\n"
        f"ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n"
        f"STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'\n"
        f"OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
        f"LOCATION 's3://{bucket}/AWSLogs/{acct}/CloudTrail/{region}/';\n"
        f"\n"
        f"-- 2. Every management change to the key, oldest first (policy text in requestparameters).\n"
        f"SELECT eventtime, eventname, useridentity.arn AS actor, errorcode, requestparameters\n"
        f"FROM {table}\n"
        f"WHERE eventsource = 'kms.amazonaws.com'\n"
        f"  AND eventname IN ({names})\n"
        f"  AND (requestparameters LIKE '%{kid}%' OR responseelements LIKE '%{kid}%'\n"
        f"       OR contains(transform(resources, r -> r.arn), '{arn}'))\n"
        f"ORDER BY eventtime;\n"
    )


__all__ = ["KEY_EVENTS", "athena_query"]
