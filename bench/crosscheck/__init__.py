"""`make crosscheck`: `trailkeeper audit` beside Prowler's CIS CloudTrail, S3 and Monitoring checks, on the
same moto accounts, one scenario at a time; a table of where the two agree (`python -m bench.crosscheck`)."""
