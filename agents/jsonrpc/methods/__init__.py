"""CGRateS services (SessionSv1, APIerSv1/2, CDRsV1, CoreSv1) mapped onto the engine."""
