"""The tutorial's notes API on AWS Lambda, through Mangum (``pip install mangum``).

Point the Lambda function's handler at ``lambda_handler.handler``, behind API Gateway
(REST or HTTP API) or an Application Load Balancer.
"""

from mangum import Mangum
from step2_api import app

# lifespan="auto": startup runs on the first invocation of each Lambda instance.
handler = Mangum(app, lifespan="auto")
