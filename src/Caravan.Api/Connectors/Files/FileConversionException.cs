namespace Caravan.Api.Connectors.Files;

/// <summary>
/// A file whose content cannot be converted, with a message for its owner that names the file
/// and what is wrong ("sales.xlsx: sheet 'Q1' has no header row") and never quotes a cell value.
/// </summary>
public sealed class FileConversionException : Exception
{
    public FileConversionException()
    {
    }

    public FileConversionException(string message)
        : base(message)
    {
    }

    public FileConversionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
