"""What F&O writes where Dataverse writes an HRESULT, and the .NET exception types its ``innererror`` names.

F&O's OData error body leaves ``error.code`` empty; the kind of failure is told by ``innererror.type``.
"""

from __future__ import annotations

from typing import Final

#: ``error.code`` of every F&O error: empty
NO_CODE: Final = ""
#: a write the entity refused (validation, an Infolog error)
WRITE_EXCEPTION: Final = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
#: a request OData itself cannot read (unknown property, bad key, bad literal, bad JSON)
ODATA_EXCEPTION: Final = "Microsoft.OData.ODataException"
#: anything else
SYSTEM_EXCEPTION: Final = "System.Exception"
